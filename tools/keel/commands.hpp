#pragma once
#include "cli_args.hpp"

#include <keel/kernel/config.hpp>

namespace keel::cli {
// The configuration for a command: files, -p, -c, and the flags that stand for settings.
Config load_config(const Options& o);
int run_exec(const Options& o);
// The interactive front end: `keel [chat] [PROMPT]` and `keel resume (--last | ID) [PROMPT]`.
int run_chat(const Options& o);
int run_resume(const Options& o);
int run_modules(const Options& o);
int run_fork(const Options& o);
int run_sessions(const Options& o);
int run_execpolicy(const Options& o);
}  // namespace keel::cli
