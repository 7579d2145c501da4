#include <catch2/catch.hpp>

#include "keel/policy/decide.hpp"

using namespace keel::policy;
using Argv = std::vector<std::string>;

namespace {
const RuleSet& rules() {
  static const RuleSet set = RuleSet::from_text(R"(
prefix_rule(["git", "push"], decision="prompt", justification="talks to the network")
prefix_rule(["cargo", "test"])
prefix_rule(["rm", "-rf", "/"], decision="forbidden", justification="never wipe the root")
)", "mem/default.rules");
  return set;
}

ExecDecision run(const Argv& argv, ApprovalMode a, SandboxMode s = SandboxMode::workspace_write,
                 bool escalated = false) {
  return decide(argv, DecideContext{a, s, escalated, &rules()});
}
}  // namespace

TEST_CASE("mode names", "[policy][decide]") {
  CHECK(parse_approval_mode("untrusted") == ApprovalMode::untrusted);
  CHECK(parse_approval_mode("on-request") == ApprovalMode::on_request);
  CHECK(parse_approval_mode("on_failure") == ApprovalMode::on_failure);
  CHECK(parse_approval_mode("never") == ApprovalMode::never);
  CHECK_FALSE(parse_approval_mode("sometimes"));
  CHECK(parse_sandbox_mode("read-only") == SandboxMode::read_only);
  CHECK(parse_sandbox_mode("workspace_write") == SandboxMode::workspace_write);
  CHECK(parse_sandbox_mode("danger-full-access") == SandboxMode::danger_full_access);
  CHECK_FALSE(parse_sandbox_mode("yolo"));
  CHECK(to_string(ApprovalMode::on_request) == "on-request");
  CHECK(to_string(SandboxMode::danger_full_access) == "danger-full-access");
  CHECK(to_string(Verdict::forbid) == "forbid");
  CHECK(to_string(RuleDecision::prompt) == "prompt");
  for (auto m : {ApprovalMode::untrusted, ApprovalMode::on_request, ApprovalMode::on_failure,
                 ApprovalMode::never}) {
    CHECK(parse_approval_mode(to_string(m)) == m);
  }
}

TEST_CASE("escalation requests", "[policy][decide]") {
  SECTION("on-request asks, and the approved command runs unsandboxed") {
    const auto d = run({"npm", "install"}, ApprovalMode::on_request, SandboxMode::workspace_write, true);
    CHECK(d.decision == Verdict::ask);
    CHECK_FALSE(d.run_sandboxed);
    CHECK(d.reason.find("outside the sandbox") != std::string::npos);
  }
  SECTION("rule-allowed commands need no question; known-safe ones do") {
    auto d = run({"cargo", "test"}, ApprovalMode::on_request, SandboxMode::read_only, true);
    CHECK(d.decision == Verdict::allow);
    CHECK_FALSE(d.run_sandboxed);
    // Leaving the sandbox is granted by the user or a rule, never by the safe list.
    d = run({"ls"}, ApprovalMode::on_request, SandboxMode::read_only, true);
    CHECK(d.decision == Verdict::ask);
    CHECK_FALSE(d.run_sandboxed);
    d = run({"bash", "-lc", "cargo test && ls"}, ApprovalMode::on_request, SandboxMode::read_only, true);
    CHECK(d.decision == Verdict::ask);
  }
  SECTION("without escalation known-safe commands still run in the sandbox") {
    const auto d = run({"bash", "-lc", "cd /tmp/x && git status"}, ApprovalMode::on_request,
                       SandboxMode::workspace_write);
    CHECK(d.decision == Verdict::allow);
    CHECK(d.run_sandboxed);
  }
  SECTION("rules still apply") {
    CHECK(run({"rm", "-rf", "/"}, ApprovalMode::on_request, SandboxMode::workspace_write, true).decision ==
          Verdict::forbid);
    CHECK(run({"git", "push"}, ApprovalMode::on_request, SandboxMode::workspace_write, true).decision ==
          Verdict::ask);
  }
  SECTION("outside on-request the request itself is refused") {
    for (auto m : {ApprovalMode::untrusted, ApprovalMode::on_failure, ApprovalMode::never}) {
      const auto d = run({"ls"}, m, SandboxMode::workspace_write, true);
      CHECK(d.decision == Verdict::forbid);
      CHECK(d.reason.find(std::string(to_string(m))) != std::string::npos);
      CHECK(d.reason.find("without with_escalated_permissions") != std::string::npos);
    }
  }
}

TEST_CASE("full access", "[policy][decide]") {
  const auto full = SandboxMode::danger_full_access;
  SECTION("on-request runs without asking, except destructive commands") {
    auto d = run({"npm", "install"}, ApprovalMode::on_request, full);
    CHECK(d.decision == Verdict::allow);
    CHECK_FALSE(d.run_sandboxed);
    d = run({"rm", "-rf", "build"}, ApprovalMode::on_request, full);
    CHECK(d.decision == Verdict::ask);
    CHECK(d.reason.find("destroy") != std::string::npos);
    CHECK(run({"git", "reset", "--hard"}, ApprovalMode::on_request, full).decision == Verdict::ask);
    CHECK(run({"bash", "-lc", "make && git clean -fdx"}, ApprovalMode::on_request, full).decision ==
          Verdict::ask);
    CHECK(run({"rm", "build.log"}, ApprovalMode::on_request, full).decision == Verdict::allow);
  }
  SECTION("other modes") {
    CHECK(run({"npm", "install"}, ApprovalMode::untrusted, full).decision == Verdict::ask);
    auto d = run({"rm", "-rf", "build"}, ApprovalMode::never, full);
    CHECK(d.decision == Verdict::allow);
    CHECK_FALSE(d.run_sandboxed);
    CHECK(run({"rm", "-rf", "build"}, ApprovalMode::on_failure, full).decision == Verdict::allow);
    CHECK(run({"rm", "-rf", "/"}, ApprovalMode::never, full).decision == Verdict::forbid);
  }
}

TEST_CASE("run_sandboxed follows the sandbox mode and the parts", "[policy][decide]") {
  auto d = run({"npm", "test"}, ApprovalMode::on_failure, SandboxMode::read_only);
  CHECK(d.decision == Verdict::allow);
  CHECK(d.run_sandboxed);
  d = run({"npm", "test"}, ApprovalMode::untrusted, SandboxMode::read_only);
  CHECK(d.decision == Verdict::ask);
  CHECK(d.run_sandboxed);  // once approved, still in the sandbox
  d = run({"git", "push"}, ApprovalMode::untrusted, SandboxMode::read_only);
  CHECK(d.decision == Verdict::ask);
  CHECK_FALSE(d.run_sandboxed);  // rules speak about running outside the sandbox
  d = run({"cargo", "test"}, ApprovalMode::never, SandboxMode::read_only);
  CHECK(d.decision == Verdict::allow);
  CHECK_FALSE(d.run_sandboxed);
  d = run({"bash", "-lc", "cargo test && npm test"}, ApprovalMode::never, SandboxMode::read_only);
  CHECK(d.decision == Verdict::allow);
  CHECK(d.run_sandboxed);  // one part needs the sandbox, so the script gets it
}

TEST_CASE("reasons and rules are reported", "[policy][decide]") {
  auto d = run({"bash", "-lc", "ls && rm -rf / && git push"}, ApprovalMode::on_request);
  CHECK(d.decision == Verdict::forbid);
  REQUIRE(d.rule);
  CHECK(d.rule->location() == "mem/default.rules:4");
  CHECK(d.rule->pattern == R"(["rm", "-rf", "/"])");
  CHECK(d.reason == "`rm -rf /` is forbidden by rule [\"rm\", \"-rf\", \"/\"] (mem/default.rules:4): "
                    "never wipe the root");

  d = run({"git", "push", "origin"}, ApprovalMode::never);
  CHECK(d.decision == Verdict::forbid);
  CHECK(d.reason.find("approval policy is never") != std::string::npos);
  REQUIRE(d.rule);
  CHECK(d.rule->decision == RuleDecision::prompt);

  d = run({"bash", "-lc", "ls && cargo test"}, ApprovalMode::untrusted);
  CHECK(d.decision == Verdict::allow);
  REQUIRE(d.rule);
  CHECK(d.rule->location() == "mem/default.rules:3");
  CHECK(d.reason.find("`ls` is a known-safe read-only command") != std::string::npos);

  d = run({"ls"}, ApprovalMode::untrusted);
  CHECK(d.decision == Verdict::allow);
  CHECK_FALSE(d.rule);
}

TEST_CASE("no rules, empty commands", "[policy][decide]") {
  const DecideContext ctx{ApprovalMode::on_request, SandboxMode::workspace_write, false, nullptr};
  CHECK(decide({"rm", "-rf", "/"}, ctx).decision == Verdict::allow);  // only the sandbox stands guard
  CHECK(decide({"rm", "-rf", "/"}, ctx).run_sandboxed);
  CHECK(decide({}, ctx).decision == Verdict::forbid);
  CHECK(decide({""}, ctx).decision == Verdict::forbid);
}

TEST_CASE("a rule can match an opaque script", "[policy][decide]") {
  const auto set = RuleSet::from_text(R"(prefix_rule(["bash", "-lc"], decision="prompt"))", "b.rules");
  const DecideContext ctx{ApprovalMode::on_failure, SandboxMode::workspace_write, false, &set};
  // Plain scripts are decided by their commands...
  CHECK(decide({"bash", "-lc", "ls"}, ctx).decision == Verdict::allow);
  // ...a script that is not plain by its whole argv.
  CHECK(decide({"bash", "-lc", "echo $(id)"}, ctx).decision == Verdict::ask);
}
