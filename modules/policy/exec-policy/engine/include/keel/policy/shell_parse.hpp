// Shell words: a conservative parser for "plain" bash scripts, shlex-style splitting,
// quoting, and recognising `bash -lc "<script>"` invocations.
//
// The parser answers one question: is this script nothing but simple commands made of
// literal words, joined by `&&`, `||`, `;`, `|` or newlines? If it can prove that, it
// returns the commands' argv lists; otherwise it returns std::nullopt ("not plain"), and
// the caller must not treat the script as known safe.
//
// Accepted:
//   - words with single quotes, double quotes (escapes \" \\ \$ \` and \<newline> inside),
//     backslash escapes and line continuations outside quotes;
//   - `#` comments (at the start of a word), blank lines, a trailing `;`, newlines after
//     `&&`, `||` and `|`;
//   - unquoted glob characters `*`, `?`, `[`: the word is kept literally and flagged
//     (ShellWord::glob), because what it expands to is unknown. known_safe.hpp accepts a
//     glob only for commands whose every option is read-only (a file named `-delete` must
//     not be able to turn `find *` into `find -delete`);
//   - a leading `~` (kept literally; reading a home-relative path is still a read);
//   - the harmless redirections `[n]>&m` (fd duplication, e.g. `2>&1`) and sending output
//     to /dev/null (`>/dev/null`, `2>/dev/null`, `>>/dev/null`, `&>/dev/null`,
//     `>&/dev/null`). They write no file, so they are dropped from the argv.
//
// Rejected (std::nullopt):
//   - any `$` outside single quotes (variables, `$(...)`, `$((...))`, `${...}`, `$'...'`)
//     and backticks, also inside double quotes unless escaped;
//   - `(` `)` (subshells, process substitution `<(...)`, function definitions, extglobs);
//   - every other redirection: `<` (input, heredoc, here-string: `<` can also open
//     /dev/tcp/...), `>`/`>>`/`>|`/`&>` to anything but /dev/null, `<&`, `>&-`;
//   - backgrounding `&`, `|&`, `;;`, `;&`;
//   - reserved words in command position (if then else elif fi for while until do done
//     case esac function select time coproc in `{` `}` `[[` `]]` `!`);
//   - assignments in command position (`X=1 cmd`, `X=1`, `a[0]=1`, `X+=1`);
//   - brace expansion (an unquoted `{` ... `}` holding an unquoted `,` or `..`);
//   - unterminated quotes, a trailing backslash, an operator with no command on one side,
//     a redirection with no command, and a NUL byte.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::policy {

// One word after quote removal.
struct ShellWord {
  std::string text;
  bool quoted = false;  // some part of the word was quoted or backslash-escaped
  bool glob = false;    // the word holds an unquoted `*`, `?` or `[`
};

// One simple command of a plain script.
struct ShellCommand {
  std::vector<ShellWord> words;  // never empty

  std::vector<std::string> argv() const;
  bool has_glob() const;
};

// Parses a bash script; std::nullopt when it is not provably plain (see above). An empty
// script (or only blanks and comments) parses to an empty list.
std::optional<std::vector<ShellCommand>> parse_shell_script(std::string_view script);

// The same, as argv lists (glob flags dropped).
std::optional<std::vector<std::vector<std::string>>> parse_plain_commands(std::string_view script);

// shlex-style split of one command line (POSIX rules for quotes and backslashes; no
// operators, no comments, no expansion: `$X` and `;` are ordinary characters). Used for
// `match`/`not_match` examples in rules files. std::nullopt on an unterminated quote or a
// trailing backslash.
std::optional<std::vector<std::string>> shell_split(std::string_view line);

// Quotes one word for a POSIX shell: unchanged when it only holds [A-Za-z0-9_@%+=:,./-]
// (and is not empty), otherwise single-quoted ('\'' for embedded quotes).
std::string shell_quote(std::string_view word);

// Joins argv with shell_quote; shell_split(shell_join(v)) == v.
std::string shell_join(const std::vector<std::string>& argv);

// If argv is `bash|sh|zsh -c|-lc <script>` (also /bin/bash, /usr/bin/bash, /bin/sh,
// /usr/bin/sh, /bin/zsh, /usr/bin/zsh), returns the script. Exactly three elements;
// anything else (extra options, positional parameters) is not recognised.
std::optional<std::string> shell_wrapper_script(const std::vector<std::string>& argv);

}  // namespace keel::policy
