// Names of approval modes, sandbox modes and verdicts.
#include <algorithm>

#include "keel/policy/decide.hpp"

namespace keel::policy {
namespace {
std::string dashed(std::string_view s) {
  std::string out(s);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}
}  // namespace

std::optional<ApprovalMode> parse_approval_mode(std::string_view s) {
  const auto d = dashed(s);
  if (d == "untrusted") return ApprovalMode::untrusted;
  if (d == "on-request") return ApprovalMode::on_request;
  if (d == "on-failure") return ApprovalMode::on_failure;
  if (d == "never") return ApprovalMode::never;
  return std::nullopt;
}

std::string_view to_string(ApprovalMode m) {
  switch (m) {
    case ApprovalMode::untrusted: return "untrusted";
    case ApprovalMode::on_request: return "on-request";
    case ApprovalMode::on_failure: return "on-failure";
    case ApprovalMode::never: return "never";
  }
  return "untrusted";
}

std::optional<SandboxMode> parse_sandbox_mode(std::string_view s) {
  const auto d = dashed(s);
  if (d == "read-only") return SandboxMode::read_only;
  if (d == "workspace-write") return SandboxMode::workspace_write;
  if (d == "danger-full-access") return SandboxMode::danger_full_access;
  return std::nullopt;
}

std::string_view to_string(SandboxMode m) {
  switch (m) {
    case SandboxMode::read_only: return "read-only";
    case SandboxMode::workspace_write: return "workspace-write";
    case SandboxMode::danger_full_access: return "danger-full-access";
  }
  return "read-only";
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::allow: return "allow";
    case Verdict::ask: return "ask";
    case Verdict::forbid: return "forbid";
  }
  return "forbid";
}

}  // namespace keel::policy
