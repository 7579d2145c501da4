#pragma once
#include "cli_args.hpp"

namespace keel::cli {
int run_exec(const Options& o);
int run_modules(const Options& o);
int run_fork(const Options& o);
int run_sessions(const Options& o);
int run_execpolicy(const Options& o);
}  // namespace keel::cli
