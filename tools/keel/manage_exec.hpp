// `keel plugin ...` and `keel trust ...` run in keel-manage (manage_main.cpp), the executable
// installed beside keel: keel itself does not link the libraries they need.
#pragma once

namespace keel::cli {
// Replaces this process with keel-manage from keel's own directory, passing argv as is.
// Returns only if that fails (after saying why on stderr), with the exit code to use.
int exec_manage(char** argv);
}  // namespace keel::cli
