// The exec-policy decision: allow, ask or forbid one command, and whether it runs in
// the sandbox.
//
// For a command `bash|sh|zsh -c|-lc "<script>"` whose script is plain (shell_parse.hpp),
// every command of the script (nested wrappers included) is decided on its own and the
// strictest result wins (forbid > ask > allow); a script that is not plain is decided as
// one opaque command (rules may still match its argv, e.g. a rule for `bash`).
//
// Order, per command:
//   0. with_escalated_permissions outside on-request mode      -> forbid (Codex rejects
//      such calls: only on-request lets the model ask to leave the sandbox; the reason
//      tells the model to retry without it).
//   1. a rule says forbidden                                   -> forbid
//   2. a rule says prompt                                      -> ask   (never: forbid,
//                                                                nobody can be asked)
//   3. a rule says allow                                       -> allow, unsandboxed
//      (rules speak about running outside the sandbox, like Codex's)
//   4. known safe (known_safe.hpp), no escalation requested    -> allow, in the sandbox
//      (read-only, so the sandbox never gets in its way, and it still contains a git
//      that runs a core.fsmonitor from a repository the model prepared; with escalation
//      requested a known-safe command is asked about like any other: only the user or a
//      rule lets a command leave the sandbox)
//   5. by approval mode:
//        untrusted   -> ask; once approved it runs in the sandbox
//        on-request  -> escalation requested: ask, approved runs unsandboxed;
//                       sandbox danger-full-access: allow (no sandbox to escape, like
//                       Codex), except is_dangerous() commands (rm -f, git reset
//                       --hard, ...) which ask;
//                       otherwise allow in the sandbox
//        on-failure  -> allow in the sandbox (the kernel asks to re-run unsandboxed when
//                       the sandbox blocked it)
//        never       -> allow in the sandbox; failures go back to the model
//
// run_sandboxed (for allow: how it runs now; for ask: how it runs once approved; for
// forbid: false) is true when the sandbox mode is not danger-full-access, escalation was
// not requested, and some command of the script was decided by step 4 or 5. Only a
// command (or a script) whose every part is rule-allowed or rule-prompted runs outside
// the sandbox; a rule-allowed command combined with one that needs the sandbox shares it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/policy/rules.hpp"

namespace keel::policy {

enum class ApprovalMode { untrusted, on_request, on_failure, never };
enum class SandboxMode { read_only, workspace_write, danger_full_access };
enum class Verdict { allow = 0, ask = 1, forbid = 2 };  // ordered by strictness

// "untrusted" "on-request" "on-failure" "never" (also accepts '_' for '-').
std::optional<ApprovalMode> parse_approval_mode(std::string_view s);
std::string_view to_string(ApprovalMode m);
// "read-only" "workspace-write" "danger-full-access" (also accepts '_' for '-').
std::optional<SandboxMode> parse_sandbox_mode(std::string_view s);
std::string_view to_string(SandboxMode m);
std::string_view to_string(Verdict v);

struct DecideContext {
  ApprovalMode approval = ApprovalMode::on_request;
  SandboxMode sandbox = SandboxMode::workspace_write;
  bool with_escalated_permissions = false;
  const RuleSet* rules = nullptr;  // may be null: no rules
};

struct ExecDecision {
  Verdict decision = Verdict::ask;
  std::string reason;              // one sentence for the user / the model
  std::optional<RuleMatch> rule;   // the rule that decided, if any
  bool run_sandboxed = true;
};

ExecDecision decide(const std::vector<std::string>& argv, const DecideContext& ctx);

inline ExecDecision decide(const std::vector<std::string>& argv, ApprovalMode approval,
                           SandboxMode sandbox, bool with_escalated_permissions,
                           const RuleSet* rules) {
  return decide(argv, DecideContext{approval, sandbox, with_escalated_permissions, rules});
}

}  // namespace keel::policy
