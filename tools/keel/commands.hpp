#pragma once
#include "cli_args.hpp"

namespace keel::cli {
int run_exec(const Options& o);
int run_modules(const Options& o);
}  // namespace keel::cli
