// Known-safe commands: read-only commands that may run without asking in every approval
// mode. "Safe" means the command cannot write files, run other programs or reach the
// network whatever its arguments (within the listed exceptions); a false "not safe" only
// costs a question, a false "safe" is a hole, so every check leans to "not safe".
//
//   cat cd cut echo expr false grep head id ls nl paste pwd rev seq stat tail tr true
//   uname wc which whoami                      any arguments
//   uniq                                        at most one file operand (a second one is
//                                               an OUTPUT file uniq writes)
//   find                                        without -exec -execdir -ok -okdir -delete
//                                               -fls -fprint -fprint0 -fprintf
//   rg                                          without --pre, --hostname-bin,
//                                               --search-zip / -z (also inside -iz...)
//   git status|log|diff|show|branch             read-only forms only:
//       - global options before the subcommand: only --no-pager, -P,
//         --no-optional-locks, --literal-pathspecs, --glob-pathspecs, --noglob-pathspecs,
//         --icase-pathspecs, --no-replace-objects. `-c`, `--config-env`, `--exec-path`,
//         `-C`, `--git-dir`, `--work-tree` and everything else make it not safe (`-c`
//         can set core.pager, core.fsmonitor, diff.external... to any program);
//       - log/diff/show: not with --output[=...], --ext-diff, --textconv;
//       - branch: listing only (-a -r -v -vv -l -i, --list, --all, --remotes, --verbose,
//         --show-current, --contains/--no-contains/--merged/--no-merged/--points-at
//         [=]X, --sort/--format[=]X, --column/--no-column, --color[=X]/--no-color,
//         --abbrev[=N], --no-abbrev, --ignore-case, -q); a positional argument only as a
//         --list pattern. -d -D --delete -m -M --move -c -C --copy -f --force -u -t ...
//         and `git branch <new>` are not safe;
//   sed -n Np | sed -n N,Mp  [file]             exactly that, the file not starting with -
//   base64                                      without -o / --output (any short option
//                                               cluster holding `o`)
//   bash|sh|zsh -c|-lc "<script>"               when the script parses as plain
//                                               (shell_parse.hpp) and every command in it
//                                               is known safe (nesting up to 8 levels)
//
// The program must be named exactly (`ls`, not `/bin/ls` or `./ls`), except the shells
// of shell_wrapper_script().
#pragma once

#include <string>
#include <vector>

#include "keel/policy/shell_parse.hpp"

namespace keel::policy {

// argv as execvp receives it (no shell involved).
bool is_known_safe(const std::vector<std::string>& argv);

// One command of a parsed script: as is_known_safe(argv), and when some word holds an
// unquoted glob, only commands whose options are all read-only (cat cut echo grep head
// ls nl paste rev stat tail wc; not in the program name) stay safe.
bool is_known_safe(const ShellCommand& command);

// A bash script: plain, non-empty, and every command known safe.
bool is_known_safe_script(std::string_view script);

// Commands that destroy work even where they are allowed to write (`rm -f`/`rm -rf`,
// `git reset --hard`, `git clean -f`, `git push --force`...). Used to ask before running
// them without a sandbox in on-request mode.
bool is_dangerous(const std::vector<std::string>& argv);

}  // namespace keel::policy
