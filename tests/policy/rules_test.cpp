#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "keel/policy/rules.hpp"
#include "keel/policy/shell_parse.hpp"
#include "temp_dir.hpp"

using keel::policy::append_allow_rule;
using keel::policy::format_prefix_rule;
using keel::policy::parse_rules;
using keel::policy::RuleDecision;
using keel::policy::RulesError;
using keel::policy::RuleSet;
using keel::policy::starlark_quote;
using keel::test::TempDir;
using Argv = std::vector<std::string>;

namespace {

// The whole file; empty if it cannot be opened.
std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Loads `text` from a real file named `name` in `dir` and returns the error message.
std::string load_error(const TempDir& dir, const std::string& name, const std::string& text) {
  const auto path = dir.write(name, text);
  try {
    RuleSet::from_file(path);
  } catch (const RulesError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("rules files parse: alternatives, defaults, any keyword order", "[policy][rules]") {
  TempDir dir{"keel-policy"};
  const auto path = dir.write("default.rules", R"(# keel rules
prefix_rule(
    pattern = ["git", ["push", "fetch"]],
    decision = "prompt",
    justification = "talks to the network",
    match = ["git push origin main", ["git", "fetch"]],
    not_match = ["git status", "git pull"],
)

prefix_rule(decision='forbidden', pattern=['rm', ['-rf', '-fr'], '/'],)  # trailing comma
prefix_rule(["cargo", "test"])   # positional pattern, default decision allow
prefix_rule(pattern=["make"], justification=None, match=None);  prefix_rule(pattern=["ninja"])
)");
  const auto set = RuleSet::from_file(path);
  REQUIRE(set.size() == 5);
  const auto& r0 = set.rules()[0];
  CHECK(r0.decision == RuleDecision::prompt);
  CHECK(r0.justification == "talks to the network");
  CHECK(r0.line == 2);
  CHECK(r0.file == path.string());
  CHECK(r0.pattern_text() == R"(["git", ["push", "fetch"]])");
  CHECK(r0.match_examples.size() == 2);
  CHECK(r0.not_match_examples.size() == 2);
  CHECK(set.rules()[1].decision == RuleDecision::forbidden);
  CHECK(set.rules()[1].line == 10);
  CHECK(set.rules()[2].decision == RuleDecision::allow);
  CHECK(set.rules()[3].justification.empty());

  auto m = set.evaluate({"git", "fetch", "--all"});
  REQUIRE(m);
  CHECK(m->decision == RuleDecision::prompt);
  CHECK(m->location() == path.string() + ":2");
  CHECK(m->justification == "talks to the network");
  CHECK(set.evaluate({"git", "push"})->decision == RuleDecision::prompt);
  CHECK_FALSE(set.evaluate({"git", "status"}));
  CHECK_FALSE(set.evaluate({"git"}));  // shorter than the pattern
  CHECK(set.evaluate({"rm", "-fr", "/"})->decision == RuleDecision::forbidden);
  CHECK_FALSE(set.evaluate({"rm", "-r", "/"}));
  CHECK(set.evaluate({"cargo", "test", "--all"})->decision == RuleDecision::allow);
  CHECK_FALSE(set.evaluate({"cargo", "build"}));
  CHECK(set.evaluate({"ninja"})->decision == RuleDecision::allow);
}

TEST_CASE("the strictest matching rule wins, across files", "[policy][rules]") {
  TempDir dir{"keel-policy"};
  dir.write("rules/10-allow.rules", R"(prefix_rule(pattern=["git"], decision="allow")
prefix_rule(pattern=["git", "push"], decision="allow", justification="first allow")
)");
  dir.write("rules/20-prompt.rules", R"(prefix_rule(pattern=["git", "push"], decision="prompt", justification="ask")
)");
  dir.write("rules/30-forbid.rules", R"(prefix_rule(pattern=["git", "push", "--force"], decision="forbidden", justification="no force pushes")
)");
  dir.write("rules/ignored.txt", "this is not a rules file (");
  RuleSet set;
  set.add_dir(dir.path() / "rules");
  REQUIRE(set.size() == 4);

  CHECK(set.evaluate({"git", "status"})->decision == RuleDecision::allow);
  const auto push = set.evaluate({"git", "push", "origin"});
  REQUIRE(push);
  CHECK(push->decision == RuleDecision::prompt);
  CHECK(push->justification == "ask");
  const auto force = set.evaluate({"git", "push", "--force", "origin"});
  REQUIRE(force);
  CHECK(force->decision == RuleDecision::forbidden);
  CHECK(force->justification == "no force pushes");
  CHECK(force->file.find("30-forbid.rules") != std::string::npos);
  CHECK(set.matches({"git", "push", "--force"}).size() == 4);

  // Among equally strict rules the first loaded wins.
  const auto set2 = RuleSet::from_text(R"(prefix_rule(["ls"], justification="one")
prefix_rule(["ls", "-l"], justification="two")
)", "mem.rules");
  CHECK(set2.evaluate({"ls", "-l"})->justification == "one");

  // A missing directory is simply empty.
  RuleSet none;
  none.add_dir(dir.path() / "no-such-dir");
  CHECK(none.empty());
}

TEST_CASE("prompt and forbidden rules also match a program given by path", "[policy][rules]") {
  const auto set = RuleSet::from_text(R"(prefix_rule(["rm"], decision="forbidden")
prefix_rule(["curl"], decision="prompt")
prefix_rule(["make"], decision="allow")
)", "x.rules");
  CHECK(set.evaluate({"/bin/rm", "-rf", "/"})->decision == RuleDecision::forbidden);
  CHECK(set.evaluate({"/usr/bin/curl", "x"})->decision == RuleDecision::prompt);
  CHECK_FALSE(set.evaluate({"/tmp/evil/make"}));  // allow rules match the exact program only
  CHECK(set.evaluate({"make"})->decision == RuleDecision::allow);
}

TEST_CASE("string syntax: escapes, raw and triple-quoted strings", "[policy][rules]") {
  const auto rules = parse_rules(R"(prefix_rule(
  pattern=["echo", "a\"b", 'it\'s', "tab\there", "\x41\101", r"raw\n", """tri"ple""", '''x'''],
))", "s.rules");
  REQUIRE(rules.size() == 1);
  const auto& p = rules[0].pattern;
  REQUIRE(p.size() == 8);
  CHECK(p[1].alternatives[0] == "a\"b");
  CHECK(p[2].alternatives[0] == "it's");
  CHECK(p[3].alternatives[0] == "tab\there");
  CHECK(p[4].alternatives[0] == "AA");
  CHECK(p[5].alternatives[0] == "raw\\n");
  CHECK(p[6].alternatives[0] == "tri\"ple");
  CHECK(p[7].alternatives[0] == "x");
}

TEST_CASE("match and not_match examples fail loudly", "[policy][rules]") {
  TempDir dir{"keel-policy"};
  SECTION("a match example that does not match") {
    const auto err = load_error(dir, "bad.rules", R"(prefix_rule(
    pattern = ["gh", "pr", "view"],
    match = [
        "gh pr view 7888",
        "gh pr --repo openai/codex view 7888",
    ],
)
)");
    CHECK(err == (dir.path() / "bad.rules").string() +
                     ":5:9: match example \"gh pr --repo openai/codex view 7888\" does not match "
                     "pattern [\"gh\", \"pr\", \"view\"]");
  }
  SECTION("a not_match example that matches") {
    const auto err = load_error(dir, "bad.rules", R"(prefix_rule(pattern=["git", ["push", "fetch"]],
  not_match=[["git", "status"], ["git", "fetch", "--all"]])
)");
    CHECK(err == (dir.path() / "bad.rules").string() +
                     ":2:33: not_match example [\"git\", \"fetch\", \"--all\"] matches pattern "
                     "[\"git\", [\"push\", \"fetch\"]]");
  }
  SECTION("an example that cannot be split") {
    const auto err = load_error(dir, "bad.rules", "prefix_rule(pattern=[\"a\"], match=[\"a 'b\"])\n");
    CHECK(err.find("bad.rules:1:35: cannot split match example") != std::string::npos);
  }
  SECTION("an empty example") {
    const auto err = load_error(dir, "bad.rules", "prefix_rule(pattern=[\"a\"], match=[\"  \"])\n");
    CHECK(err.find("bad.rules:1:35: empty match example") != std::string::npos);
  }
  SECTION("a failing rule loses the whole file") {
    RuleSet set;
    const auto path = dir.write("two.rules", R"(prefix_rule(["ls"])
prefix_rule(["rm"], match=["ls"])
)");
    CHECK_THROWS_AS(set.add_file(path), RulesError);
    CHECK(set.empty());
  }
}

TEST_CASE("syntax errors name the file and the line", "[policy][rules]") {
  TempDir dir{"keel-policy"};
  struct Row {
    std::string text;
    std::string expected;  // after "<file>:"
  };
  const std::vector<Row> rows = {
      {"# header\n\nprefix_rule(\n  pattern=[\"ls\"],\n  decison=\"allow\",\n)\n",
       "5:3: unknown argument 'decison' (did you mean 'decision'?)"},
      {"prefix_rule(pattern=[\"ls\"], colour=\"red\")", "1:29: unknown argument 'colour'"},
      {"prefix_rule(pattern=[\"ls\"], decision=\"deny\")",
       "1:38: unknown decision \"deny\" (expected \"allow\", \"prompt\" or \"forbidden\")"},
      {"prefix_rule(decision=\"allow\")", "1:1: prefix_rule() is missing pattern=[...]"},
      {"prefix_rule(pattern=[])", "1:21: pattern must not be empty"},
      {"prefix_rule(pattern=\"ls\")", "1:21: pattern must be a list of strings"},
      {"prefix_rule(pattern=[\"git\", []])", "1:29: a list of alternatives must not be empty"},
      {"prefix_rule(pattern=[\"git\", [[\"x\"]]])", "1:30: alternatives must be strings"},
      {"prefix_rule(pattern=[\"ls\"], pattern=[\"ls\"])", "1:29: argument 'pattern' given twice"},
      {"\n\nprefix_rule(pattern=[\"ls\"]\n", "4:1: expected ',' or ')' in prefix_rule(...), found end of file"},
      {"prefix_rule(pattern=[\"ls\" \"-l\"])", "1:27: expected ',' or ']' in list, found string"},
      {"prefix_rule(pattern=[\"ls], decision=\"allow\")", "1:43: unterminated string"},
      {"prefix_rule(pattern=[\"ls\"])\x01", "1:28: unexpected character '\\x01'"},
      {"prefix_rule(pattern=[\"ls\n\"])", "1:22: unterminated string"},
      {"prefix_rule(pattern=[\"a\\qb\"])", "1:24: invalid escape sequence '\\q'"},
      {"prefix_rule(pattern=[ls])", "1:22: unexpected name 'ls' (strings must be quoted)"},
      {"prefix_rule(pattern=[\"ls\"], 3)", "1:29: unexpected character '3'"},
      {"prefix_rule([\"ls\"], [\"x\"])", "1:21: prefix_rule takes one positional argument (pattern); use "
                                        "pattern=, decision=, justification=, match=, not_match="},
      {"prefix_rule(decision=\"allow\", [\"ls\"])", "1:31: positional argument after keyword arguments"},
      {"allow_rule(pattern=[\"ls\"])", "1:1: unknown function 'allow_rule'; only prefix_rule(...) is supported"},
      {"x = [\"ls\"]", "1:1: assignments are not supported; only prefix_rule(...) calls are allowed"},
      {"prefix_rule([\"a\"]) prefix_rule([\"b\"])", "1:20: expected a newline or ';' between statements"},
      {"prefix_rule(pattern=[\"ls\"], justification=[\"x\"])", "1:43: justification must be a string"},
      {"prefix_rule(pattern=[\"ls\"], match=\"ls\")",
       "1:35: match must be a list of commands (strings or lists of strings)"},
      {"\"ls\"", "1:1: expected prefix_rule(...), found string"},
      {"prefix_rule(pattern=[\"ls\"]) @", "1:29: unexpected character '@'"},
  };
  for (const auto& row : rows) {
    INFO(row.text);
    CHECK(load_error(dir, "rules/default.rules", row.text) ==
          (dir.path() / "rules/default.rules").string() + ":" + row.expected);
  }

  // The error carries its parts too.
  try {
    RuleSet::from_text("prefix_rule(pattern=[\"ls\"],\n  decison=\"allow\")", "rules/default.rules");
    FAIL("no error");
  } catch (const RulesError& e) {
    CHECK(std::string(e.what()) == "rules/default.rules:2:3: unknown argument 'decison' (did you mean 'decision'?)");
    CHECK(e.file() == "rules/default.rules");
    CHECK(e.line() == 2);
    CHECK(e.column() == 3);
  }
}

TEST_CASE("an unreadable rules file names the file", "[policy][rules]") {
  TempDir dir{"keel-policy"};
  const auto missing = dir.path() / "missing.rules";
  try {
    RuleSet::from_file(missing);
    FAIL("no error");
  } catch (const RulesError& e) {
    CHECK(std::string(e.what()).rfind(missing.string() + ": cannot read rules file", 0) == 0);
  }
  // A bad file in a directory fails the whole directory, naming the bad file.
  dir.write("d/a.rules", "prefix_rule([\"ls\"])\n");
  dir.write("d/b.rules", "prefix_rule([\"ls\"]\n");
  RuleSet set;
  try {
    set.add_dir(dir.path() / "d");
    FAIL("no error");
  } catch (const RulesError& e) {
    CHECK(e.file() == (dir.path() / "d/b.rules").string());
  }
  CHECK(set.empty());
}

TEST_CASE("format_prefix_rule and starlark_quote", "[policy][rules]") {
  CHECK(starlark_quote("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\x01\"");
  CHECK(format_prefix_rule({"git", "push"}, RuleDecision::allow) ==
        R"(prefix_rule(pattern=["git", "push"], decision="allow"))");
  CHECK(format_prefix_rule({"rm"}, RuleDecision::forbidden, "no") ==
        R"(prefix_rule(pattern=["rm"], decision="forbidden", justification="no"))");
}

TEST_CASE("append_allow_rule round-trips", "[policy][rules]") {
  TempDir dir{"keel-policy"};
  const auto path = dir.path() / "home/.keel/rules/default.rules";  // parents do not exist yet
  const Argv first = {"cargo", "test"};
  const Argv odd = {"my tool", "--msg=it's \"quoted\" \\ $HOME `x`", "line\nbreak", "tab\t",
                    "\x01", "héllo ✓", ""};

  CHECK(append_allow_rule(path, first) == R"(prefix_rule(pattern=["cargo", "test"], decision="allow"))");
  append_allow_rule(path, odd, "approved by the user");
  auto set = RuleSet::from_file(path);
  REQUIRE(set.size() == 2);
  CHECK(set.rules()[1].line == 2);
  auto m = set.evaluate({"cargo", "test", "--all"});
  REQUIRE(m);
  CHECK(m->decision == RuleDecision::allow);
  Argv odd_call = odd;
  odd_call.push_back("extra");
  m = set.evaluate(odd_call);
  REQUIRE(m);
  CHECK(m->decision == RuleDecision::allow);
  CHECK(m->justification == "approved by the user");
  CHECK_FALSE(set.evaluate({"cargo", "build"}));
  Argv shorter(odd.begin(), odd.end() - 1);
  CHECK_FALSE(set.evaluate(shorter));

  // The same rule again writes nothing.
  const auto before = read_file(path);
  append_allow_rule(path, first);
  CHECK(read_file(path) == before);

  // A file without a final newline gets one before the rule; existing rules stay.
  const auto other = dir.write("other.rules", "# mine\nprefix_rule([\"rm\"], decision=\"forbidden\")");
  append_allow_rule(other, {"ls", "-la"});
  CHECK(read_file(other) ==
        "# mine\nprefix_rule([\"rm\"], decision=\"forbidden\")\n"
        "prefix_rule(pattern=[\"ls\", \"-la\"], decision=\"allow\")\n");
  const auto set2 = RuleSet::from_file(other);
  CHECK(set2.size() == 2);
  CHECK(set2.evaluate({"ls", "-la", "/"})->decision == RuleDecision::allow);
  CHECK(set2.evaluate({"rm", "x"})->decision == RuleDecision::forbidden);

  CHECK_THROWS_AS(append_allow_rule(path, {}), std::invalid_argument);
}

TEST_CASE("append_allow_rule reports I/O errors", "[policy][rules]") {
  if (::geteuid() == 0) return;  // root ignores permissions
  TempDir dir{"keel-policy"};
  const auto locked = dir.path() / "locked";
  std::filesystem::create_directories(locked);
  ::chmod(locked.c_str(), 0500);
  CHECK_THROWS_AS(append_allow_rule(locked / "default.rules", {"ls"}), std::system_error);
  ::chmod(locked.c_str(), 0700);
}
