#include <catch2/catch.hpp>

#include "keel/policy/shell_parse.hpp"

using keel::policy::parse_plain_commands;
using keel::policy::parse_shell_script;
using keel::policy::shell_join;
using keel::policy::shell_quote;
using keel::policy::shell_split;
using keel::policy::shell_wrapper_script;
using Commands = std::vector<std::vector<std::string>>;

TEST_CASE("plain scripts parse into commands", "[policy][shell]") {
  struct Row {
    const char* script;
    Commands expected;
  };
  const std::vector<Row> rows = {
      {"ls", {{"ls"}}},
      {"  ls   -la  ", {{"ls", "-la"}}},
      {"ls && pwd", {{"ls"}, {"pwd"}}},
      {"a || b ; c | d", {{"a"}, {"b"}, {"c"}, {"d"}}},
      {"a&&b||c;d|e", {{"a"}, {"b"}, {"c"}, {"d"}, {"e"}}},
      {"ls\npwd\n\n", {{"ls"}, {"pwd"}}},
      {"ls;", {{"ls"}}},
      {"ls &&\n  pwd", {{"ls"}, {"pwd"}}},
      {"cat a |\n wc -l", {{"cat", "a"}, {"wc", "-l"}}},
      {"echo 'a b' \"c d\"", {{"echo", "a b", "c d"}}},
      {"echo 'it'\\''s'", {{"echo", "it's"}}},
      {"echo \"say \\\"hi\\\" \\\\ \\$HOME \\`x\\`\"", {{"echo", "say \"hi\" \\ $HOME `x`"}}},
      {"echo \"a\\nb\"", {{"echo", "a\\nb"}}},  // other backslashes stay in double quotes
      {"echo a\\ b \\$x", {{"echo", "a b", "$x"}}},
      {"echo '$HOME' '`id`' '$(x)'", {{"echo", "$HOME", "`id`", "$(x)"}}},
      {"ls \\\n  -la", {{"ls", "-la"}}},  // line continuation
      {"# comment only", {}},
      {"", {}},
      {"   \n\t\n", {}},
      {"ls # trailing comment && rm -rf /", {{"ls"}}},
      {"echo a#b", {{"echo", "a#b"}}},
      {"echo ''", {{"echo", ""}}},
      {"ls *.cpp", {{"ls", "*.cpp"}}},
      {"ls 2>/dev/null", {{"ls"}}},
      {"ls 2> /dev/null && pwd >/dev/null", {{"ls"}, {"pwd"}}},
      {"make 2>&1 | tail", {{"make"}, {"tail"}}},
      {"ls &>/dev/null", {{"ls"}}},
      {"ls >&/dev/null", {{"ls"}}},
      {"ls >>/dev/null", {{"ls"}}},
      {"ls >\"/dev/null\"", {{"ls"}}},
      {"echo 2 >/dev/null", {{"echo", "2"}}},
      {"find . -name '*.py' -exec echo {} +", {{"find", ".", "-name", "*.py", "-exec", "echo", "{}", "+"}}},
      {"git show HEAD@{1}", {{"git", "show", "HEAD@{1}"}}},
      {"echo x=1", {{"echo", "x=1"}}},
      {"'X=1' ls", {{"X=1", "ls"}}},
      {"\"if\" x", {{"if", "x"}}},
      {"find . ! -name x", {{"find", ".", "!", "-name", "x"}}},
      {"cat ~/notes.txt", {{"cat", "~/notes.txt"}}},
      {"echo héllo ✓", {{"echo", "héllo", "✓"}}},
  };
  for (const auto& row : rows) {
    INFO("script: " << row.script);
    const auto got = parse_plain_commands(row.script);
    REQUIRE(got.has_value());
    CHECK(*got == row.expected);
  }
}

TEST_CASE("scripts that are not provably plain are rejected", "[policy][shell]") {
  const std::vector<std::string> scripts = {
      "echo $HOME",
      "echo ${HOME}",
      "echo $(id)",
      "echo `id`",
      "echo \"$(id)\"",
      "echo \"$HOME\"",
      "echo \"`id`\"",
      "echo $'a\\nb'",
      "echo $((1+2))",
      "(ls)",
      "(cd sub && ls)",
      "{ ls; }",
      "ls; }",
      "diff <(ls a) <(ls b)",
      "tee >(cat)",
      "ls > out.txt",
      "ls >> log",
      "ls >| out",
      "ls 2>err.txt",
      "ls &> all.txt",
      "cat < in.txt",
      "cat <<EOF\nhi\nEOF",
      "cat <<< hi",
      "ls 2>&-",
      "ls 0<&3",
      "ls <> f",
      "ls &",
      "sleep 1 & ls",
      "ls |& cat",
      "X=1 ls",
      "X=1",
      "A+=b ls",
      "a[0]=1",
      "if true; then ls; fi",
      "for f in a b; do echo x; done",
      "while true; do ls; done",
      "until false; do ls; done",
      "case x in x) ls;; esac",
      "function f { ls; }",
      "f() { ls; }",
      "[[ -f x ]]",
      "! ls",
      "time ls",
      "coproc ls",
      "ls {a,b}",
      "echo {1..3}",
      "cat 'unterminated",
      "cat \"unterminated",
      "ls \\",
      "ls &&",
      "ls ||",
      "ls |",
      "&& ls",
      "; ls",
      "ls ;; pwd",
      "ls ; ; pwd",
      "| ls",
      ">/dev/null",
      "ls > ",
      std::string("ls\0 -la", 7),
  };
  for (const auto& s : scripts) {
    INFO("script: " << s);
    CHECK_FALSE(parse_plain_commands(s).has_value());
  }
}

TEST_CASE("glob and quote flags on words", "[policy][shell]") {
  const auto cmds = parse_shell_script("ls *.cpp '*.h' a?c x[12] \"q\"");
  REQUIRE(cmds);
  REQUIRE(cmds->size() == 1);
  const auto& w = cmds->front().words;
  REQUIRE(w.size() == 6);
  CHECK_FALSE(w[0].glob);
  CHECK(w[1].glob);
  CHECK_FALSE(w[2].glob);
  CHECK(w[2].quoted);
  CHECK(w[3].glob);
  CHECK(w[4].glob);
  CHECK(w[5].quoted);
  CHECK(cmds->front().has_glob());
  CHECK_FALSE(parse_shell_script("ls '*'")->front().has_glob());
}

TEST_CASE("shell_split is shlex-like", "[policy][shell]") {
  CHECK(shell_split("gh pr view 7888") == std::vector<std::string>{"gh", "pr", "view", "7888"});
  CHECK(shell_split("  a  'b c'  \"d \\\"e\\\"\" f\\ g ") ==
        std::vector<std::string>{"a", "b c", "d \"e\"", "f g"});
  CHECK(shell_split("echo $HOME; ls") == std::vector<std::string>{"echo", "$HOME;", "ls"});
  CHECK(shell_split("a '' b") == std::vector<std::string>{"a", "", "b"});
  CHECK(shell_split("") == std::vector<std::string>{});
  CHECK_FALSE(shell_split("a 'b").has_value());
  CHECK_FALSE(shell_split("a \"b").has_value());
  CHECK_FALSE(shell_split("a \\").has_value());
}

TEST_CASE("shell_quote and shell_join round-trip through shell_split", "[policy][shell]") {
  CHECK(shell_quote("plain-word_1.txt") == "plain-word_1.txt");
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("a b") == "'a b'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  const std::vector<std::vector<std::string>> cases = {
      {"git", "commit", "-m", "it's a \"test\" $HOME `x` \\ ; && |"},
      {"", "  ", "\n", "tab\there", "*", "~", "#x"},
      {"héllo", "✓"},
  };
  for (const auto& argv : cases) {
    INFO(shell_join(argv));
    CHECK(shell_split(shell_join(argv)) == argv);
    // A joined command is always a plain script too.
    const auto parsed = parse_plain_commands(shell_join(argv));
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 1);
    CHECK(parsed->front() == argv);
  }
}

TEST_CASE("shell wrappers are recognised exactly", "[policy][shell]") {
  CHECK(shell_wrapper_script({"bash", "-lc", "ls"}) == "ls");
  CHECK(shell_wrapper_script({"bash", "-c", "ls"}) == "ls");
  CHECK(shell_wrapper_script({"sh", "-c", "ls"}) == "ls");
  CHECK(shell_wrapper_script({"zsh", "-lc", "ls"}) == "ls");
  CHECK(shell_wrapper_script({"/bin/bash", "-lc", "ls"}) == "ls");
  CHECK_FALSE(shell_wrapper_script({"bash", "-lc"}));
  CHECK_FALSE(shell_wrapper_script({"bash", "-lc", "ls", "extra"}));
  CHECK_FALSE(shell_wrapper_script({"bash", "-x", "ls"}));
  CHECK_FALSE(shell_wrapper_script({"bash", "script.sh", "x"}));
  CHECK_FALSE(shell_wrapper_script({"python3", "-c", "print(1)"}));
  CHECK_FALSE(shell_wrapper_script({"/tmp/bash", "-lc", "ls"}));
}
