// The `exec` front end: start a session, submit one prompt, render every event until the
// turn ends, write the last agent message where asked (-o), exit 0 only if the turn completed.
//
// `run` args: {"prompt", "json": bool, "output_last_message"?: path, "cwd"?, "model"?, "provider"?}
// `interrupt` {}: {"handled": false}: on Ctrl-C keel interrupts the turn and exits (130).
#include "renderer.hpp"

#include <keel/sdk/module.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <fstream>
#include <mutex>

namespace {
namespace json = boost::json;
using keel::exec_ui::field;

class ExecUi : public keel::sdk::Module {
 public:
  ExecUi(keel::sdk::Host& host, const json::object&) : host_(host) {}

  void handle(keel::sdk::Call call) override {
    if (call.method() == "approve") {
      // exec never prompts: what it may do is fixed by its flags. A call that needs approval
      // is denied, and the model is told so.
      return (void)call.ok(R"({"decision":"deny"})");
    }
    if (call.method() == "interrupt") {
      // Ctrl-C, offered by the launcher: exec does not carry on after one. The launcher then
      // interrupts the turn, run() returns, and keel exits with 130.
      return (void)call.ok(R"({"handled":false})");
    }
    if (call.method() != "run") return (void)call.error(KEEL_ERR_NOT_FOUND, "exec has no method '" + std::string(call.method()) + "'");
    auto request = json::parse(call.payload()).as_object();
    json::object args;
    if (auto* a = request.if_contains("args"); a && a->is_object()) args = a->as_object();
    call.ok(json::serialize(json::object{{"exit_code", run(args)}}));
  }

 private:
  int run(const json::object& args) {
    auto* j = args.if_contains("json");
    bool as_json = j && j->is_bool() && j->as_bool();
    auto renderer = as_json ? keel::exec_ui::make_jsonl_renderer(stdout) : keel::exec_ui::make_text_renderer(stdout, stderr);
    std::string prompt = field(args, "prompt");
    if (prompt.empty()) {
      renderer->fatal("no prompt given (pass it as an argument or on stdin)");
      return 2;
    }

    auto started = host_.request_wait("kernel.session.start",
                                      json::serialize(json::object{{"cwd", field(args, "cwd")},
                                                                   {"model", field(args, "model")},
                                                                   {"provider", field(args, "provider")},
                                                                   {"ui", "exec"},
                                                                   {"resume", field(args, "resume")},
                                                                   {"fork", field(args, "fork")}}));
    auto info = parse(started.payload);
    if (!started.ok()) {
      renderer->fatal(message_of(info, "could not start a session"));
      return 1;
    }
    const std::string session_id = field(info, "session_id");
    renderer->thread_started(session_id, info);

    // Render this session's events in order; note when its turn has ended.
    std::mutex mu;
    std::condition_variable cv;
    bool turn_over = false;
    auto sub = host_.subscribe("event", [&](std::string_view, std::string_view text) {
      auto ev = parse(text);
      if (field(ev, "session_id") != session_id) return;
      auto type = field(ev, "type");
      if (type == "item.delta") return;  // exec renders whole items
      renderer->event(ev);
      if (type == "turn.completed" || type == "turn.failed") {
        std::lock_guard lock(mu);
        turn_over = true;
        cv.notify_all();
      }
    });

    auto reply = host_.request_wait("kernel.turn.submit",
                                    json::serialize(json::object{{"session_id", session_id}, {"text", prompt}}));
    auto result = parse(reply.payload);
    if (reply.ok()) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return turn_over; });
    } else {
      renderer->fatal(message_of(result, "the turn could not run"));
    }
    host_.unsubscribe(sub);

    if (auto path = field(args, "output_last_message"); !path.empty()) {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << field(result, "last_agent_message");
      if (!out.flush()) renderer->fatal("could not write " + path);
    }
    return reply.ok() && field(result, "status") == "completed" ? 0 : 1;
  }

  static json::object parse(std::string_view text) {
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
  }
  static std::string message_of(const json::object& reply, std::string fallback) {
    if (auto* e = reply.if_contains("error"); e && e->is_object()) {
      auto m = field(e->as_object(), "message");
      if (!m.empty()) return m;
    }
    return fallback;
  }

  keel::sdk::Host& host_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_UI, 0, "exec", "Runs one prompt non-interactively; text or JSONL output", nullptr},
};

}  // namespace

KEEL_MODULE(ExecUi, "exec", "0.1.0", "Non-interactive front end (keel exec)", kCapabilities)
