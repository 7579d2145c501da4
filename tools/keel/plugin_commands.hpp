// `keel plugin ...`: marketplaces, search, install, upgrade, pin, remove (keel_lifecycle).
#pragma once

namespace keel::cli {
// args are what follows "plugin"; returns the process exit code (0 ok, 1 failed, 2 usage).
int run_plugin(int argc, char** argv);
const char* plugin_usage();
}  // namespace keel::cli
