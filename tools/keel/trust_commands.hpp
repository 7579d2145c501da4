// `keel trust add FILE.pub [--name NAME]`, `keel trust list`, `keel trust remove ID`.
#pragma once

namespace keel::cli {
// args are what follows "trust"; returns the process exit code (0 ok, 1 failed, 2 usage).
int run_trust(int argc, char** argv);
const char* trust_usage();
}  // namespace keel::cli
