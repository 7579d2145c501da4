#include <catch2/catch.hpp>

#include "keel/policy/known_safe.hpp"

using keel::policy::is_dangerous;
using keel::policy::is_known_safe;
using keel::policy::is_known_safe_script;
using Argv = std::vector<std::string>;

TEST_CASE("known-safe argv", "[policy][safe]") {
  const std::vector<Argv> safe = {
      {"cat", "a.txt"},        {"cd", "src"},          {"cut", "-d:", "-f1", "/etc/passwd"},
      {"echo", "hi"},          {"expr", "1", "+", "2"}, {"false"},
      {"grep", "-rn", "x", "."}, {"head", "-n", "3", "f"}, {"id"},
      {"ls", "-la"},           {"nl", "f"},             {"paste", "a", "b"},
      {"pwd"},                 {"rev", "f"},            {"seq", "1", "10"},
      {"stat", "f"},           {"tail", "-f", "log"},   {"tr", "a-z", "A-Z"},
      {"true"},                {"uname", "-a"},         {"uniq", "-c", "in.txt"},
      {"uniq", "-f", "2", "in.txt"}, {"uniq"},          {"wc", "-l"},
      {"which", "git"},        {"whoami"},
      {"find", ".", "-name", "*.cpp", "-type", "f"},
      {"find", ".", "-newer", "x", "-print"},
      {"rg", "-n", "TODO"},    {"rg", "--pre-glob", "*.pdf", "x"}, {"rg", "-e", "z"},
      {"rg", "-ez"},           // -e takes the rest as its value
      {"git", "status"},       {"git", "status", "--porcelain"},
      {"git", "log", "--oneline", "-n", "5"}, {"git", "log", "-p", "--", "src"},
      {"git", "diff", "--stat"}, {"git", "diff", "--output-indicator-new=+"},
      {"git", "show", "HEAD~2:README.md"},
      {"git", "--no-pager", "diff"}, {"git", "-P", "log"},
      {"git", "branch"},       {"git", "branch", "-a"}, {"git", "branch", "-vv"},
      {"git", "branch", "--show-current"}, {"git", "branch", "--list", "feat*"},
      {"git", "branch", "--contains", "abc123"}, {"git", "branch", "--merged=main"},
      {"git", "branch", "--sort", "-committerdate", "--format", "%(refname)"},
      {"sed", "-n", "10p"},    {"sed", "-n", "1,20p", "file.txt"},
      {"base64", "f"},         {"base64", "-d", "f"},   {"base64", "-w0", "f"},
      {"bash", "-lc", "ls && pwd"}, {"sh", "-c", "cat a | wc -l"},
      {"zsh", "-lc", "git status; git log -n 1"},
      {"bash", "-lc", "bash -lc 'ls'"},
      {"bash", "-lc", "ls *.md"},
  };
  for (const auto& a : safe) {
    INFO(keel::policy::shell_join(a));
    CHECK(is_known_safe(a));
  }
}

TEST_CASE("not known-safe argv", "[policy][safe]") {
  const std::vector<Argv> unsafe = {
      {},
      {"rm", "-rf", "x"},
      {"/bin/ls"},
      {"./cat", "x"},
      {"uniq", "in.txt", "out.txt"},
      {"uniq", "-c", "in", "out"},
      {"find", ".", "-exec", "rm", "{}", ";"},
      {"find", ".", "-execdir", "x", "{}", "+"},
      {"find", ".", "-ok", "rm", "{}", ";"},
      {"find", ".", "-okdir", "rm", "{}", ";"},
      {"find", ".", "-delete"},
      {"find", ".", "-fls", "out"},
      {"find", ".", "-fprint", "out"},
      {"find", ".", "-fprint0", "out"},
      {"find", ".", "-fprintf", "out", "%p"},
      {"rg", "--pre", "cat", "x"},
      {"rg", "--pre=cat", "x"},
      {"rg", "--hostname-bin", "evil", "x"},
      {"rg", "--hostname-bin=evil"},
      {"rg", "--search-zip", "x"},
      {"rg", "-z", "x"},
      {"rg", "-iz", "x"},
      {"git"},
      {"git", "-c", "core.pager=evil", "log"},
      {"git", "--config-env", "core.pager=X", "log"},
      {"git", "--exec-path=/tmp", "status"},
      {"git", "-C", "/tmp/other", "status"},
      {"git", "--git-dir=/tmp/x", "log"},
      {"git", "-p", "log"},
      {"git", "commit", "-m", "x"},
      {"git", "push"},
      {"git", "checkout", "main"},
      {"git", "diff", "--output", "/tmp/x"},
      {"git", "diff", "--output=/tmp/x"},
      {"git", "diff", "--outp=/tmp/x"},
      {"git", "diff", "--ext-diff"},
      {"git", "log", "--ext-diff", "-p"},
      {"git", "show", "--textconv", "HEAD"},
      {"git", "log", "--output=x"},
      {"git", "branch", "-d", "old"},
      {"git", "branch", "-D", "old"},
      {"git", "branch", "--delete", "old"},
      {"git", "branch", "-m", "a", "b"},
      {"git", "branch", "-M", "b"},
      {"git", "branch", "--move", "a", "b"},
      {"git", "branch", "-c", "a", "b"},
      {"git", "branch", "-f", "x", "HEAD"},
      {"git", "branch", "-u", "origin/main"},
      {"git", "branch", "--set-upstream-to=origin/main"},
      {"git", "branch", "newbranch"},
      {"git", "branch", "-av", "newbranch"},
      {"sed", "-i", "s/a/b/", "f"},
      {"sed", "-n", "1d", "f"},
      {"sed", "-n", "1p", "-i"},
      {"sed", "-n", "1p", "a", "b"},
      {"sed", "1p", "f"},
      {"sed", "-n", "p"},
      {"sed", "-n", "1,p"},
      {"sed", "-n", "$p"},
      {"base64", "-o", "out", "in"},
      {"base64", "-do", "out"},
      {"base64", "--output", "out"},
      {"base64", "--output=out"},
      {"bash", "-lc", "ls && rm -rf x"},
      {"bash", "-lc", "ls > out"},
      {"bash", "-lc", ""},
      {"bash", "-lc", "# nothing"},
      {"bash", "-lc", "echo $(id)"},
      {"bash", "-x", "ls"},
      {"bash", "-lc", "find * -maxdepth 1"},  // a file named -delete would be an option
      {"bash", "-lc", "rg x *"},
      {"bash", "-lc", "l* -la"},
      {"bash", "-lc", "uniq *"},
      {"python3", "-c", "print(1)"},
  };
  for (const auto& a : unsafe) {
    INFO(keel::policy::shell_join(a));
    CHECK_FALSE(is_known_safe(a));
  }
}

TEST_CASE("deeply nested shells stop being safe", "[policy][safe]") {
  std::string script = "ls";
  for (int i = 0; i < 6; ++i) script = "bash -lc " + keel::policy::shell_quote(script);
  CHECK(is_known_safe_script(script));
  for (int i = 0; i < 6; ++i) script = "bash -lc " + keel::policy::shell_quote(script);
  CHECK_FALSE(is_known_safe_script(script));
}

TEST_CASE("dangerous commands", "[policy][safe]") {
  CHECK(is_dangerous({"rm", "-rf", "build"}));
  CHECK(is_dangerous({"rm", "-f", "x"}));
  CHECK(is_dangerous({"/bin/rm", "--force", "x"}));
  CHECK(is_dangerous({"git", "reset", "--hard", "HEAD~1"}));
  CHECK(is_dangerous({"git", "clean", "-fdx"}));
  CHECK(is_dangerous({"git", "push", "--force", "origin", "main"}));
  CHECK(is_dangerous({"git", "push", "origin", "+main"}));
  CHECK(is_dangerous({"git", "branch", "-D", "x"}));
  CHECK(is_dangerous({"bash", "-lc", "ls && rm -rf /"}));
  CHECK_FALSE(is_dangerous({"rm", "x"}));
  CHECK_FALSE(is_dangerous({"rm", "--", "-f"}));
  CHECK_FALSE(is_dangerous({"git", "reset", "HEAD"}));
  CHECK_FALSE(is_dangerous({"git", "push", "origin", "main"}));
  CHECK_FALSE(is_dangerous({"git", "branch", "-d", "x"}));
  CHECK_FALSE(is_dangerous({}));
}
