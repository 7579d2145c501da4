// Model output and user files are untrusted: the parsers must neither crash nor take
// quadratic time on hostile input.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>

#include "keel/policy/decide.hpp"
#include "keel/policy/known_safe.hpp"
#include "keel/policy/rules.hpp"
#include "keel/policy/shell_parse.hpp"

using namespace keel::policy;

namespace {
std::string random_text(std::mt19937& rng, const std::string& alphabet, std::size_t max_len) {
  std::uniform_int_distribution<std::size_t> len(0, max_len);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  std::string s(len(rng), ' ');
  for (auto& c : s) c = alphabet[pick(rng)];
  return s;
}
}  // namespace

TEST_CASE("shell parser survives random scripts", "[policy][robust]") {
  std::mt19937 rng(12345);
  const std::string alphabet = "ab ls-'\"\\$`(){}[]*?<>&|;#=\n\t!~,.0129/";
  const DecideContext ctx{ApprovalMode::on_request, SandboxMode::workspace_write, false, nullptr};
  for (int i = 0; i < 20000; ++i) {
    const auto script = random_text(rng, alphabet, 40);
    const auto parsed = parse_shell_script(script);
    if (parsed) {
      for (const auto& c : *parsed) REQUIRE_FALSE(c.words.empty());
    }
    (void)is_known_safe_script(script);
    (void)is_dangerous({"bash", "-lc", script});
    const auto d = decide({"bash", "-lc", script}, ctx);
    REQUIRE(d.decision == Verdict::allow);  // on-request + workspace-write + no rules
  }
}

TEST_CASE("rules parser survives random files", "[policy][robust]") {
  std::mt19937 rng(777);
  const std::string alphabet = "prefix_rule()[]=,\"'#\\\n pattern decision allow x";
  int parsed = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto text = random_text(rng, alphabet, 60);
    try {
      parsed += static_cast<int>(parse_rules(text, "fuzz.rules").size());
    } catch (const RulesError& e) {
      REQUIRE(std::string(e.what()).rfind("fuzz.rules:", 0) == 0);
    }
  }
  SUCCEED("parsed " << parsed << " rules");
}

TEST_CASE("pathological inputs stay fast", "[policy][robust]") {
  const auto start = std::chrono::steady_clock::now();
  CHECK(parse_shell_script("echo " + std::string(200000, '{')).has_value());
  CHECK_FALSE(parse_shell_script("echo " + std::string(100000, '{') + "," +
                                 std::string(100000, '}')).has_value());
  std::string many = "ls";
  for (int i = 0; i < 20000; ++i) many += " && ls";
  CHECK(is_known_safe_script(many));
  CHECK_THROWS_AS(parse_rules("prefix_rule(pattern=" + std::string(100000, '[') + ")", "deep.rules"),
                  RulesError);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < std::chrono::seconds(5));
}
