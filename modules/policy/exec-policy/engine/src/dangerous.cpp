// Commands that destroy work even where writing is allowed.
#include <string_view>

#include "keel/policy/known_safe.hpp"

namespace keel::policy {
namespace {

using Args = std::vector<std::string>;

bool short_cluster_has(std::string_view arg, char flag) {
  return arg.size() > 1 && arg[0] == '-' && arg[1] != '-' &&
         arg.find(flag, 1) != std::string_view::npos;
}

// True when an option before `--` is `--<long>` or a short cluster holding `flag`.
bool has_option(const Args& a, std::size_t from, std::string_view long_opt, char flag) {
  for (std::size_t i = from; i < a.size(); ++i) {
    const std::string_view arg = a[i];
    if (arg == "--") break;
    if (arg == long_opt || arg.substr(0, arg.find('=')) == long_opt) return true;
    if (flag != '\0' && short_cluster_has(arg, flag)) return true;
  }
  return false;
}

bool git_dangerous(const Args& a) {
  // Skip global options (and the values of -C / -c) to find the subcommand.
  std::size_t i = 1;
  while (i < a.size() && !a[i].empty() && a[i][0] == '-') {
    if (a[i] == "-C" || a[i] == "-c") ++i;
    ++i;
  }
  if (i >= a.size()) return false;
  const std::string_view sub = a[i];
  ++i;
  if (sub == "reset") return has_option(a, i, "--hard", '\0');
  if (sub == "clean") return has_option(a, i, "--force", 'f');
  if (sub == "push") {
    if (has_option(a, i, "--force", 'f') || has_option(a, i, "--force-with-lease", '\0') ||
        has_option(a, i, "--mirror", '\0') || has_option(a, i, "--delete", 'd')) {
      return true;
    }
    for (; i < a.size(); ++i) {
      if (!a[i].empty() && (a[i][0] == '+' || a[i][0] == ':')) return true;  // +ref, :ref
    }
    return false;
  }
  if (sub == "branch") {  // -D, or --delete with --force: deletes unmerged work
    return has_option(a, i, "--delete", 'D') && has_option(a, i, "--force", 'D');
  }
  return false;
}

bool dangerous(const Args& argv, int depth) {
  if (argv.empty()) return false;
  std::string_view prog = argv[0];
  if (const auto slash = prog.rfind('/'); slash != std::string_view::npos) {
    prog = prog.substr(slash + 1);
  }
  if (prog == "rm") return has_option(argv, 1, "--force", 'f');
  if (prog == "git") return git_dangerous(argv);
  if (auto script = shell_wrapper_script(argv); script && depth < 8) {
    auto parsed = parse_plain_commands(*script);
    if (!parsed) return false;
    for (const auto& cmd : *parsed) {
      if (dangerous(cmd, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace

bool is_dangerous(const std::vector<std::string>& argv) { return dangerous(argv, 0); }

}  // namespace keel::policy
