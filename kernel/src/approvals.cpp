// Before a tool runs: the policy module's decision, the user's approval when it says "ask"
// (asked of the session's UI over the bus; silence counts as a denial, an interrupt voids the
// question), and the sandbox policy the call runs under. Also the "sandbox" server that tools
// call to wrap a command.
#include "json_util.hpp"
#include "kernel_impl.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>

namespace keel {
namespace json = boost::json;

json::object Kernel::Impl::sandbox_policy(const Session& s, bool sandboxed) const {
  std::string mode = sandboxed ? config.string_or("sandbox_mode", "workspace-write") : "danger-full-access";
  json::array roots{json::value(s.cwd)};
  if (auto* r = config.find("sandbox_workspace_write.writable_roots"); r && r->is_array())
    for (auto& v : r->as_array())
      if (v.is_string()) roots.push_back(v);
  json::array protected_paths{json::value(s.cwd + "/.git"), json::value(s.cwd + "/.keel"),
                              json::value(config.keel_home().string())};
  return json::object{{"mode", mode},
                      {"writable_roots", roots},
                      {"network_access", config.bool_or("sandbox_workspace_write.network_access", false)},
                      {"protected_paths", protected_paths}};
}

void Kernel::Impl::serve_sandbox() {
  // "sandbox.prepare" / "sandbox.explain" go to the configured backend; full access needs none.
  bus.serve("sandbox", [this](const RequestPtr& req) {
    auto p = parse_object(req->payload());
    auto* policy = p.if_contains("policy");
    std::string mode = policy && policy->is_object() ? str_field(policy->as_object(), "mode") : "";
    if (mode == "danger-full-access" && req->method() == "prepare") {
      json::object out{{"argv", p["argv"]}, {"env", p["env"].is_object() ? p["env"] : json::object{}}};
      return (void)req->reply(KEEL_OK, json::serialize(out));
    }
    auto backend = config.string_or("sandbox", "bwrap");
    auto server = ModuleHost::server_name(KEEL_CAP_SANDBOX, backend);
    if (!bus.has_server(server))
      return (void)req->reply(KEEL_ERR_UNAVAILABLE,
                              json::serialize(json::object{{"error", json::object{{"message", "sandbox '" + backend + "' is not available"}}}}));
    auto forwarded = req;  // answer the caller with the backend's reply
    bus.request(server + "." + req->method(), req->payload(), nullptr,
                [forwarded](int status, std::string_view body) { forwarded->reply(status, body); });
  });
}

std::string Kernel::Impl::ask_user(Session& s, const ToolCall& call, const json::array& argv, const std::string& reason) {
  // What the call would do, for a person to judge (tools other than shell have no argv):
  // the arguments, cut at a character boundary if long.
  std::string arguments = call.arguments;
  if (arguments.size() > 4000) {
    std::size_t cut = 4000;
    while (cut > 0 && (static_cast<unsigned char>(arguments[cut]) & 0xC0) == 0x80) --cut;
    arguments = arguments.substr(0, cut) + "…";
  }
  json::object ask{{"session_id", s.id}, {"call_id", call.call_id}, {"tool", call.name}, {"argv", argv},
                   {"arguments", arguments},
                   {"reason", reason}, {"cwd", s.cwd}};
  publish(s, "approval.requested", ask);
  std::string decision = "deny";
  auto ui_server = ModuleHost::server_name(KEEL_CAP_UI, s.ui.empty() ? "exec" : s.ui);
  if (bus.has_server(ui_server)) {
    auto pending = std::make_shared<PendingAnswer>();
    {
      std::lock_guard lock(s.mu);
      s.pending_answers.insert(pending);
      if (s.interrupted) pending->answer("abort");
    }
    // A front end answers when the person does; it must not block this thread meanwhile.
    auto id = bus.request(
        ui_server + ".approve", json::serialize(ask), nullptr,
        [pending](int status, std::string_view body) {
          pending->answer(status == KEEL_OK ? str_field(parse_object(body), "decision") : "deny");
        },
        [&](std::uint64_t request_id) {
          std::lock_guard lock(s.mu);
          s.active_requests.insert(request_id);
          if (s.interrupted) bus.cancel(request_id);
        });
    auto timeout = std::chrono::milliseconds(config.int_or("approval_timeout_ms", 300000));
    std::optional<std::string> answer;
    {
      std::unique_lock lock(pending->mu);
      pending->cv.wait_for(lock, timeout, [&] { return pending->value.has_value(); });
      answer = pending->value;
    }
    {
      std::lock_guard lock(s.mu);
      s.active_requests.erase(id);
      s.pending_answers.erase(pending);
    }
    if (answer) decision = *answer;
    else bus.cancel(id);  // silence counts as a denial; the front end drops the question
  }
  if (s.interrupted) decision = "abort";  // whatever the person said, the turn is over
  publish(s, "approval.resolved", json::object{{"call_id", call.call_id}, {"decision", decision}});
  return decision;
}

Kernel::Impl::Verdict Kernel::Impl::authorize(Session& s, const ToolCall& call) {
  auto policy_name = config.string_or("policy", "exec-policy");
  auto server = ModuleHost::server_name(KEEL_CAP_POLICY, policy_name);
  if (!bus.has_server(server)) {
    for (auto& m : host->modules())
      if (m.name == policy_name && m.state != ModuleState::loaded)  // installed but broken: refuse, loudly
        return {false, true, "refused: the policy module '" + policy_name + "' did not load (" + m.reason + ")"};
    return {true, true, ""};  // no policy module installed: the sandbox alone confines tools
  }
  json::object q{{"tool", call.name}, {"arguments", call.arguments}, {"cwd", s.cwd},
                 {"approval_mode", config.string_or("approval_policy", "on-request")},
                 {"sandbox_mode", config.string_or("sandbox_mode", "workspace-write")}};
  auto [status, d] = call_and_wait(bus, server + ".check", q);
  if (status != KEEL_OK) return {false, true, "refused: the policy check failed (" + error_message(d) + ")"};
  auto decision = str_field(d, "decision");
  auto* sb = d.if_contains("sandboxed");
  bool sandboxed = !sb || !sb->is_bool() || sb->as_bool();
  auto reason = str_field(d, "reason");
  if (auto rule = str_field(d, "rule"); !rule.empty()) reason += " (rule " + rule + ")";
  if (decision == "allow") return {true, sandboxed, ""};
  if (decision == "forbid") return {false, true, "forbidden by policy: " + reason};

  json::array argv = d["argv"].is_array() ? d["argv"].as_array() : json::array{};
  std::string key = call.name + " " + json::serialize(argv);
  {
    std::lock_guard lock(s.mu);
    if (s.approved_for_session.count(key)) return {true, sandboxed, ""};
  }
  auto answer = ask_user(s, call, argv, reason);
  if (answer == "approve") return {true, sandboxed, ""};
  if (answer == "approve_session") {
    std::lock_guard lock(s.mu);
    s.approved_for_session.insert(key);
    return {true, sandboxed, ""};
  }
  if (answer == "approve_rule") {
    auto [added, reply] = call_and_wait(bus, server + ".add_rule", json::object{{"argv", argv}});
    if (added != KEEL_OK) log(KEEL_LOG_WARN, "could not add the approved command to the rules: " + error_message(reply));
    return {true, sandboxed, ""};
  }
  if (answer == "abort") {
    if (s.interrupted) return {false, true, "aborted: the user interrupted the turn before this call ran"};
    interrupt(s.id);
    return {false, true, "aborted: the user stopped the turn instead of approving this call"};
  }
  return {false, true, "the user denied this call (" + reason + "); do not retry it as is"};
}

}  // namespace keel
