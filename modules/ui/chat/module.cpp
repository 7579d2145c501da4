// The `chat` front end: an interactive conversation in the terminal.
//
// `run` args: {"prompt"?, "cwd"?, "model"?, "provider"?, "resume"?: id or "last", "fork"?}
// `approve`: queued for the person and answered from the conversation's own thread.
// `interrupt` {}: Ctrl-C, forwarded by the launcher; stops the running turn (replies at once).
// `shutdown` {}: SIGTERM/SIGHUP: keel is ending; leave the prompt (the turn is interrupted by keel).
#include "conversation.hpp"

#include <keel/sdk/module.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace {
namespace json = boost::json;

class ChatUi : public keel::sdk::Module {
 public:
  ChatUi(keel::sdk::Host& host, const json::object&) : host_(host), term_(STDIN_FILENO, STDOUT_FILENO) {}

  void handle(keel::sdk::Call call) override {
    auto method = call.method();
    if (method == "run") return run(std::move(call));
    if (method == "approve") {
      if (auto c = active()) return c->approve(std::move(call));
      return (void)call.ok(R"({"decision":"deny"})");
    }
    if (method == "interrupt") {
      bool handled = true;
      if (auto c = active()) handled = c->interrupt();
      return (void)call.ok(handled ? R"({"handled":true})" : R"({"handled":false})");
    }
    if (method == "shutdown") {
      shutdown_requested_ = true;  // also when it comes before run() has a conversation
      if (auto c = active()) c->shutdown();
      return (void)call.ok("{}");
    }
    call.error(KEEL_ERR_NOT_FOUND, "chat has no method '" + std::string(method) + "'");
  }

 private:
  void run(keel::sdk::Call call) {
    json::object args;
    boost::system::error_code ec;
    auto request = json::parse(call.payload(), ec);
    if (!ec && request.is_object())
      if (auto* a = request.as_object().if_contains("args"); a && a->is_object()) args = a->as_object();
    auto conversation = std::make_shared<keel::chat::Conversation>(host_, term_, std::move(args));
    {
      std::lock_guard lock(mu_);
      if (active_) return (void)call.error(KEEL_ERR_UNAVAILABLE, "a chat is already running in this terminal");
      active_ = conversation;
    }
    if (shutdown_requested_) conversation->shutdown();
    int code = conversation->run();
    {
      std::lock_guard lock(mu_);
      active_.reset();
    }
    call.ok(json::serialize(json::object{{"exit_code", code}}));
  }

  std::shared_ptr<keel::chat::Conversation> active() {
    std::lock_guard lock(mu_);
    return active_;
  }

  keel::sdk::Host& host_;
  keel::chat::Terminal term_;
  std::mutex mu_;
  std::shared_ptr<keel::chat::Conversation> active_;
  std::atomic<bool> shutdown_requested_{false};
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_UI, 0, "chat", "Interactive conversation in the terminal: streamed answers, approval prompts, Ctrl-C, /commands",
     nullptr},
};

}  // namespace

KEEL_MODULE(ChatUi, "chat", "0.1.0", "Interactive front end (keel, keel resume)", kCapabilities)
