// keel::sdk::sandbox — the client side of the `sandbox` capability, for every module that
// spawns processes. The active sandbox module (bwrap, landlock, none) serves it on the bus:
//
//   sandbox.prepare {"argv", "cwd", "workdir", "env", "policy"} -> {"argv", "env", "sandbox", "mode"}
//   sandbox.explain {"argv", "exit_code", "output", "policy", "cwd", "workdir"} -> {"blocked", "reason"}
//
// A tool call carries the session's policy in its request ("sandbox": {"mode", ...}). Before
// spawning, ask prepare() for the wrapped argv (and the variables to add) and run that instead;
// if it fails, do not run the command at all — a command that asked for a sandbox never runs
// without one. After a failed run, explain() says whether the sandbox blocked it and why, in
// words for the model and the user.
//
//   namespace sb = keel::sdk::sandbox;
//   if (const auto* policy = sb::policy_of(ctx.request)) {
//     sb::Command cmd{argv, ctx.cwd, workdir, {}, *policy};
//     sb::Prepared p = sb::prepare(ctx.host, cmd, sb::Wait::on(ctx.call));
//     if (!p) return {"sandbox error: " + p.error + "\nThe command was not run.", false};
//     ... run p.argv with p.env added; if it failed:
//     sb::Explanation e = sb::explain(ctx.host, cmd, exit_code, output, sb::Wait::on(ctx.call));
//     if (e.blocked) output += "\n" + e.reason;
//   }
//
// Header-only; uses the SDK's Host and nothing of the kernel. Blocking: call from a thread
// that may wait (a module's handle() runs on one).
#pragma once

#include <keel/abi.h>
#include <keel/sdk/call.hpp>
#include <keel/sdk/host.hpp>
#include <keel/sdk/strings.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::sdk::sandbox {

// The sandbox policy a tool request asks for (its "sandbox" object), or nullptr when it asks
// for none: no policy, or mode danger-full-access.
inline const boost::json::object* policy_of(const boost::json::object& request) {
  const auto* sb = request.if_contains("sandbox");
  if (!sb || !sb->is_object()) return nullptr;
  const auto* mode = sb->as_object().if_contains("mode");
  if (mode && mode->is_string() && mode->as_string() == "danger-full-access") return nullptr;
  return &sb->as_object();
}

// How long to wait for the sandbox module, and what stops the wait early. A request that
// times out or is cancelled is cancelled on the bus too.
struct Wait {
  std::chrono::milliseconds timeout{60'000};
  std::function<bool()> cancelled;  // polled while waiting; may be empty

  // Waits until `call` (the request being handled) is cancelled, or the timeout.
  static Wait on(const Call& call, std::chrono::milliseconds timeout = std::chrono::milliseconds(60'000)) {
    return Wait{timeout, [call] { return call.cancelled(); }};
  }
};

// One command, unwrapped.
struct Command {
  std::vector<std::string> argv;
  std::string cwd;      // the workspace (the session's cwd); `workdir` when empty
  std::string workdir;  // where the command runs
  std::map<std::string, std::string> env;  // its variables ($TMPDIR among them is made writable)
  boost::json::object policy;              // the request's "sandbox" object
};

// What prepare() answers. Falsy: do not run the command (`error` says why).
struct Prepared {
  int status = KEEL_OK;  // the sandbox's error status, KEEL_ERR_TIMEOUT or KEEL_ERR_CANCELLED
  std::string error;
  std::vector<std::string> argv;           // run this instead of the command
  std::map<std::string, std::string> env;  // add these to its environment
  std::string sandbox;                     // the backend that wrapped it ("bwrap", ...)
  explicit operator bool() const { return status == KEEL_OK && error.empty(); }
};

struct Explanation {
  bool blocked = false;  // the sandbox blocked the command
  std::string reason;    // why, for the model and the user
};

namespace detail {

// Sends a request and waits for its reply, the timeout, or cancellation (whichever is first).
inline Reply request(const Host& host, std::string_view topic, const boost::json::object& payload, const Wait& wait) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Reply> reply;
  };
  auto state = std::make_shared<State>();  // the reply may come after we stopped waiting
  std::uint64_t id = host.request(topic, boost::json::serialize(payload), {}, [state](int status, std::string_view body) {
    std::lock_guard lock(state->mu);
    state->reply = Reply{status, std::string(body)};
    state->cv.notify_all();
  });
  const auto deadline = std::chrono::steady_clock::now() + wait.timeout;
  std::unique_lock lock(state->mu);
  for (;;) {
    if (state->reply) return std::move(*state->reply);
    auto now = std::chrono::steady_clock::now();
    bool timed_out = now >= deadline;
    lock.unlock();
    bool cancelled = !timed_out && wait.cancelled && wait.cancelled();
    if (timed_out || cancelled) {
      if (id != 0) host.cancel(id);
      lock.lock();
      if (state->reply) return std::move(*state->reply);
      if (cancelled) return Reply{KEEL_ERR_CANCELLED, R"({"error":{"message":"cancelled while waiting for the sandbox"}})"};
      return Reply{KEEL_ERR_TIMEOUT, R"({"error":{"message":"the sandbox did not answer )" + std::string(topic) +
                                         " within " + std::to_string(wait.timeout.count()) + R"( ms"}})"};
    }
    lock.lock();
    // Cancellation is polled: a short slice, never past the deadline.
    auto slice = std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::milliseconds(50));
    state->cv.wait_for(lock, slice, [&] { return state->reply.has_value(); });
  }
}

inline boost::json::array to_array(const std::vector<std::string>& items) {
  boost::json::array out;
  for (const auto& s : items) out.emplace_back(s);
  return out;
}

inline boost::json::object to_object(const std::map<std::string, std::string>& env) {
  boost::json::object out;
  for (const auto& [k, v] : env) out[k] = v;
  return out;
}

}  // namespace detail

// Asks the sandbox module to wrap `command` (topic "sandbox.prepare").
inline Prepared prepare(const Host& host, const Command& command, const Wait& wait = {}) {
  const std::string& workdir = command.workdir;
  boost::json::object request{{"argv", detail::to_array(command.argv)},
                              {"cwd", command.cwd.empty() ? workdir : command.cwd},
                              {"workdir", workdir},
                              {"env", detail::to_object(command.env)},
                              {"policy", command.policy}};
  Reply reply = detail::request(host, "sandbox.prepare", request, wait);
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(reply.payload, ec);
  const boost::json::object* body = !ec && parsed.is_object() ? &parsed.as_object() : nullptr;
  Prepared out;
  if (!reply.ok()) {
    out.status = reply.status;
    const boost::json::value* msg = nullptr;
    if (body)
      if (const auto* e = body->if_contains("error"); e && e->is_object()) msg = e->as_object().if_contains("message");
    out.error = msg && msg->is_string() ? std::string(msg->as_string())
                                        : "sandbox.prepare failed with status " + std::to_string(reply.status);
    return out;
  }
  const auto* argv = body ? body->if_contains("argv") : nullptr;
  if (!argv || !argv->is_array()) {
    out.status = KEEL_ERR_INTERNAL;
    out.error = "the sandbox's reply has no argv";
    return out;
  }
  for (const auto& v : argv->as_array())
    if (v.is_string()) out.argv.emplace_back(v.as_string());
  if (out.argv.empty() || out.argv.size() != argv->as_array().size() || out.argv[0].empty()) {
    out.status = KEEL_ERR_INTERNAL;
    out.error = "the sandbox returned an invalid argv";
    out.argv.clear();
    return out;
  }
  if (const auto* env = body->if_contains("env"); env && env->is_object())
    for (const auto& [k, v] : env->as_object())
      if (v.is_string()) out.env[std::string(k)] = std::string(v.as_string());
  if (const auto* s = body->if_contains("sandbox"); s && s->is_string()) out.sandbox = s->as_string();
  return out;
}

// After `command` (as given to prepare(), unwrapped) failed: did the sandbox block it, and
// why ("sandbox.explain")? Any failure to get an answer is "not blocked".
inline Explanation explain(const Host& host, const Command& command, int exit_code, std::string_view output,
                           const Wait& wait = {}) {
  const std::string& workdir = command.workdir;
  boost::json::object request{{"argv", detail::to_array(command.argv)},
                              {"exit_code", exit_code},
                              {"output", sanitize_utf8(output)},
                              {"policy", command.policy},
                              {"cwd", command.cwd.empty() ? workdir : command.cwd},
                              {"workdir", workdir}};
  Reply reply = detail::request(host, "sandbox.explain", request, wait);
  boost::system::error_code ec;
  boost::json::value parsed = boost::json::parse(reply.payload, ec);
  if (!reply.ok() || ec || !parsed.is_object()) return {};
  const auto* blocked = parsed.as_object().if_contains("blocked");
  const auto* reason = parsed.as_object().if_contains("reason");
  if (!blocked || !blocked->is_bool() || !blocked->as_bool() || !reason || !reason->is_string()) return {};
  return {true, std::string(reason->as_string())};
}

}  // namespace keel::sdk::sandbox
