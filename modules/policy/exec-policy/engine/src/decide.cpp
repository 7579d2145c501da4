// The decision: rules, known-safe commands, approval and sandbox modes (see decide.hpp).
#include "keel/policy/decide.hpp"

#include <algorithm>

#include "keel/policy/known_safe.hpp"
#include "keel/policy/shell_parse.hpp"

namespace keel::policy {
namespace {

constexpr int kMaxNesting = 8;

// One command to decide: a direct argv, or one command of a plain script.
struct Unit {
  std::vector<std::string> argv;
  std::optional<ShellCommand> parsed;  // set for script commands (glob flags)
};

// Flattens `bash -lc "<plain script>"` (nested too) into its commands.
void expand(std::vector<std::string> argv, const ShellCommand* parsed, int depth, std::vector<Unit>& out) {
  const bool globbed = parsed && parsed->has_glob();  // its words are not known yet
  if (depth < kMaxNesting && !globbed) {
    if (auto script = shell_wrapper_script(argv)) {
      auto commands = parse_shell_script(*script);
      if (commands && !commands->empty()) {
        for (const auto& c : *commands) expand(c.argv(), &c, depth + 1, out);
        return;
      }
    }
  }
  Unit u;
  u.argv = std::move(argv);
  if (parsed) u.parsed = *parsed;
  out.push_back(std::move(u));
}

struct Part {
  Verdict verdict = Verdict::ask;
  std::string reason;
  std::optional<RuleMatch> rule;
  bool needs_sandbox = false;
};

std::string describe_rule(const RuleMatch& m) {
  std::string out = "rule " + m.pattern + " (" + m.location() + ")";
  if (!m.justification.empty()) out += ": " + m.justification;
  return out;
}

Part evaluate(const Unit& u, const DecideContext& ctx) {
  const std::string cmd = "`" + shell_join(u.argv) + "`";
  if (ctx.rules) {
    if (auto m = ctx.rules->evaluate(u.argv)) {
      switch (m->decision) {
        case RuleDecision::forbidden:
          return {Verdict::forbid, cmd + " is forbidden by " + describe_rule(*m), m, false};
        case RuleDecision::prompt:
          if (ctx.approval == ApprovalMode::never) {
            return {Verdict::forbid,
                    cmd + " needs approval by " + describe_rule(*m) +
                        ", and the approval policy is never",
                    m, false};
          }
          return {Verdict::ask, cmd + " needs approval by " + describe_rule(*m), m, false};
        case RuleDecision::allow:
          return {Verdict::allow, cmd + " is allowed by " + describe_rule(*m), m, false};
      }
    }
  }
  // Known-safe commands skip the question but not the sandbox: a read-only command in a
  // directory the model prepared (`cd /tmp/x && git status` with core.fsmonitor set) can
  // still run programs. For the same reason they do not skip the question when the model
  // asks to leave the sandbox: only the user or a rule grants that.
  if (!ctx.with_escalated_permissions) {
    const bool safe = u.parsed ? is_known_safe(*u.parsed) : is_known_safe(u.argv);
    if (safe) return {Verdict::allow, cmd + " is a known-safe read-only command", std::nullopt, true};
  }

  const bool full_access = ctx.sandbox == SandboxMode::danger_full_access;
  switch (ctx.approval) {
    case ApprovalMode::untrusted:
      return {Verdict::ask, cmd + " is not known to be safe and the approval policy is untrusted",
              std::nullopt, true};
    case ApprovalMode::on_request:
      if (ctx.with_escalated_permissions) {
        return {Verdict::ask, cmd + ": the model asks to run it outside the sandbox", std::nullopt,
                false};
      }
      if (full_access && is_dangerous(u.argv)) {
        return {Verdict::ask, cmd + " can destroy work and would run without a sandbox",
                std::nullopt, false};
      }
      return {Verdict::allow,
              full_access ? cmd + " runs with full access (sandbox danger-full-access)"
                          : cmd + " runs in the " + std::string(to_string(ctx.sandbox)) + " sandbox",
              std::nullopt, true};
    case ApprovalMode::on_failure:
      return {Verdict::allow,
              cmd + " runs in the sandbox; approval is asked if the sandbox blocks it",
              std::nullopt, true};
    case ApprovalMode::never:
      return {Verdict::allow, cmd + " runs in the sandbox; the approval policy is never",
              std::nullopt, true};
  }
  return {Verdict::ask, cmd + ": unknown approval policy", std::nullopt, true};
}

}  // namespace

ExecDecision decide(const std::vector<std::string>& argv, const DecideContext& ctx) {
  ExecDecision d;
  if (argv.empty() || argv[0].empty()) {
    d.decision = Verdict::forbid;
    d.reason = "empty command";
    d.run_sandboxed = false;
    return d;
  }
  if (ctx.with_escalated_permissions && ctx.approval != ApprovalMode::on_request) {
    d.decision = Verdict::forbid;
    d.reason = "the approval policy is " + std::string(to_string(ctx.approval)) +
               "; escalated permissions may only be requested under on-request. Run the "
               "command without with_escalated_permissions";
    d.run_sandboxed = false;
    return d;
  }

  std::vector<Unit> units;
  expand(argv, nullptr, 0, units);
  std::vector<Part> parts;
  parts.reserve(units.size());
  for (const auto& u : units) parts.push_back(evaluate(u, ctx));

  Verdict worst = Verdict::allow;
  for (const auto& p : parts) worst = std::max(worst, p.verdict);
  d.decision = worst;
  if (worst == Verdict::allow) {
    for (const auto& p : parts) {
      if (!d.reason.empty()) d.reason += "; ";
      d.reason += p.reason;
      if (!d.rule && p.rule) d.rule = p.rule;
    }
  } else {
    const auto it = std::find_if(parts.begin(), parts.end(),
                                 [worst](const Part& p) { return p.verdict == worst; });
    d.reason = it->reason;
    d.rule = it->rule;
  }
  const bool any_needs_sandbox =
      std::any_of(parts.begin(), parts.end(), [](const Part& p) { return p.needs_sandbox; });
  d.run_sandboxed = worst != Verdict::forbid && ctx.sandbox != SandboxMode::danger_full_access &&
                    !ctx.with_escalated_permissions && any_needs_sandbox;
  return d;
}

}  // namespace keel::policy
