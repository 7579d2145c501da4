// Known-safe (read-only) commands; the list and its exceptions are in known_safe.hpp.
#include "keel/policy/known_safe.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>

namespace keel::policy {
namespace {

constexpr int kMaxNesting = 8;

using Args = std::vector<std::string>;

bool one_of(std::string_view s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// `--name=value` -> `--name`.
std::string_view long_name(std::string_view arg) { return arg.substr(0, arg.find('=')); }

// True when `--name[=value]` could mean one of `longs`, counting abbreviations of at
// least one letter (git's and GNU getopt's parsers accept unambiguous ones).
// Conservative on purpose: an option value that happens to look like one counts too.
bool abbreviates(std::string_view arg, std::initializer_list<std::string_view> longs) {
  const auto name = long_name(arg);
  if (name.size() < 3 || !starts_with(name, "--")) return false;
  for (auto l : longs) {
    if (starts_with(l, name)) return true;
  }
  return false;
}

// Safe with any arguments.
constexpr std::array<std::string_view, 23> kAnyArgs = {
    "cat", "cd",  "cut",  "echo", "expr", "false", "grep",  "head",
    "id",  "ls",  "nl",   "paste", "pwd", "rev",   "seq",   "stat",
    "tail", "tr", "true", "uname", "wc",  "which", "whoami"};

// Commands whose every option is read-only, so a glob expanding to `-something` cannot
// make them write or execute.
constexpr std::array<std::string_view, 12> kGlobTolerant = {
    "cat", "cut", "echo", "grep", "head", "ls", "nl", "paste", "rev", "stat", "tail", "wc"};

bool uniq_safe(const Args& a) {
  // uniq [OPTION]... [INPUT [OUTPUT]]: a second operand is a file uniq writes.
  int operands = 0;
  bool end_of_options = false;
  for (std::size_t i = 1; i < a.size(); ++i) {
    const std::string_view arg = a[i];
    if (end_of_options || arg == "-" || !starts_with(arg, "-")) {
      ++operands;
    } else if (arg == "--") {
      end_of_options = true;
    } else if (starts_with(arg, "--")) {
      if (arg.find('=') == std::string_view::npos &&
          abbreviates(arg, {"--skip-fields", "--skip-chars", "--check-chars"})) {
        ++i;  // the value
      }
    } else {
      for (std::size_t k = 1; k < arg.size(); ++k) {
        if (arg[k] == 'f' || arg[k] == 's' || arg[k] == 'w') {
          if (k + 1 == arg.size()) ++i;  // value in the next argument
          break;
        }
      }
    }
  }
  return operands <= 1;
}

bool find_safe(const Args& a) {
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (one_of(a[i], {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fls", "-fprint",
                      "-fprint0", "-fprintf"})) {
      return false;
    }
  }
  return true;
}

bool rg_safe(const Args& a) {
  for (std::size_t i = 1; i < a.size(); ++i) {
    const std::string_view arg = a[i];
    if (starts_with(arg, "--")) {
      if (abbreviates(arg, {"--pre", "--hostname-bin", "--search-zip"})) return false;
    } else if (starts_with(arg, "-") && arg.size() > 1) {
      // A cluster of short flags; after a flag taking a value the rest is the value.
      for (std::size_t k = 1; k < arg.size(); ++k) {
        if (arg[k] == 'z') return false;
        if (std::string_view("ABCEMTdefgjmrt").find(arg[k]) != std::string_view::npos) break;
      }
    }
  }
  return true;
}

bool sed_safe(const Args& a) {
  if (a.size() != 3 && a.size() != 4) return false;
  if (a[1] != "-n") return false;
  // N p  or  N,M p
  const std::string_view e = a[2];
  std::size_t k = 0;
  auto digits = [&] {
    const auto start = k;
    while (k < e.size() && e[k] >= '0' && e[k] <= '9') ++k;
    return k > start;
  };
  if (!digits()) return false;
  if (k < e.size() && e[k] == ',') {
    ++k;
    if (!digits()) return false;
  }
  if (k + 1 != e.size() || e[k] != 'p') return false;
  if (a.size() == 4 && (a[3].empty() || a[3][0] == '-')) return false;
  return true;
}

bool base64_safe(const Args& a) {
  for (std::size_t i = 1; i < a.size(); ++i) {
    const std::string_view arg = a[i];
    if (starts_with(arg, "--")) {
      if (abbreviates(arg, {"--output"})) return false;
    } else if (starts_with(arg, "-") && arg.find('o') != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool git_branch_safe(const Args& a, std::size_t i) {
  bool list_mode = false;
  bool positional = false;
  bool end_of_options = false;
  for (; i < a.size(); ++i) {
    const std::string_view arg = a[i];
    if (end_of_options || !starts_with(arg, "-") || arg == "-") {
      positional = true;
    } else if (arg == "--") {
      end_of_options = true;
    } else if (starts_with(arg, "--")) {
      const auto name = long_name(arg);
      const bool has_value = name.size() != arg.size();
      if (one_of(name, {"--contains", "--no-contains", "--merged", "--no-merged", "--points-at",
                        "--sort", "--format"})) {
        // --contains/--merged take an optional commit; the others a required value. Either
        // way the next argument, if any, is that value.
        if (!has_value) ++i;
      } else if (one_of(name, {"--list", "--all", "--remotes", "--verbose", "--show-current",
                               "--ignore-case", "--column", "--no-column", "--color",
                               "--no-color", "--abbrev", "--no-abbrev", "--quiet"})) {
        if (name == "--list") list_mode = true;
        if (has_value && !one_of(name, {"--column", "--color", "--abbrev"})) return false;
      } else {
        return false;
      }
    } else {
      for (std::size_t k = 1; k < arg.size(); ++k) {
        if (std::string_view("arvliq").find(arg[k]) == std::string_view::npos) return false;
        if (arg[k] == 'l') list_mode = true;
      }
    }
  }
  return !positional || list_mode;
}

bool git_safe(const Args& a) {
  std::size_t i = 1;
  while (i < a.size() &&
         one_of(a[i], {"--no-pager", "-P", "--no-optional-locks", "--literal-pathspecs",
                       "--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs",
                       "--no-replace-objects"})) {
    ++i;
  }
  if (i >= a.size()) return false;
  const std::string_view sub = a[i];
  ++i;
  if (sub == "status") return true;
  if (sub == "log" || sub == "diff" || sub == "show") {
    for (; i < a.size(); ++i) {
      if (abbreviates(a[i], {"--output", "--ext-diff", "--textconv"})) return false;
    }
    return true;
  }
  if (sub == "branch") return git_branch_safe(a, i);
  return false;
}

bool safe_script(std::string_view script, int depth);

bool safe_argv(const Args& a, int depth) {
  if (a.empty()) return false;
  if (auto script = shell_wrapper_script(a)) {
    return depth < kMaxNesting && safe_script(*script, depth + 1);
  }
  const std::string_view prog = a[0];
  if (prog == "uniq") return uniq_safe(a);
  if (std::find(kAnyArgs.begin(), kAnyArgs.end(), prog) != kAnyArgs.end()) return true;
  if (prog == "find") return find_safe(a);
  if (prog == "rg") return rg_safe(a);
  if (prog == "git") return git_safe(a);
  if (prog == "sed") return sed_safe(a);
  if (prog == "base64") return base64_safe(a);
  return false;
}

bool safe_command(const ShellCommand& cmd, int depth) {
  if (cmd.words.empty()) return false;
  if (cmd.has_glob()) {
    if (cmd.words.front().glob) return false;
    const std::string_view prog = cmd.words.front().text;
    return std::find(kGlobTolerant.begin(), kGlobTolerant.end(), prog) != kGlobTolerant.end();
  }
  return safe_argv(cmd.argv(), depth);
}

bool safe_script(std::string_view script, int depth) {
  auto parsed = parse_shell_script(script);
  if (!parsed || parsed->empty()) return false;
  return std::all_of(parsed->begin(), parsed->end(),
                     [depth](const ShellCommand& c) { return safe_command(c, depth); });
}

}  // namespace

bool is_known_safe(const std::vector<std::string>& argv) { return safe_argv(argv, 0); }

bool is_known_safe(const ShellCommand& command) { return safe_command(command, 0); }

bool is_known_safe_script(std::string_view script) { return safe_script(script, 0); }

}  // namespace keel::policy
