// keel::sdk::Call — one request being handled by a module. Answered exactly once: if every
// copy is dropped without a reply, the last one answers KEEL_ERR_INTERNAL, so a forgetful
// handler can never leave the kernel waiting forever.
#pragma once

#include <keel/abi.h>
#include <keel/sdk/strings.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

namespace keel::sdk {

class Call {
 public:
  Call(const keel_host_api* api, keel_call* call, std::string_view capability, std::string_view method,
       std::string_view payload)
      : state_(std::make_shared<State>(api, call, capability, method, payload)) {}

  std::string_view capability() const { return state_->capability; }
  std::string_view method() const { return state_->method; }
  std::string_view payload() const { return state_->payload; }

  bool cancelled() const { return state_->api->is_cancelled(state_->call) != 0; }
  bool replied() const { return state_->replied.load(); }

  void emit(std::string_view event_json) const {
    if (!state_->replied.load()) state_->api->emit(state_->call, to_keel_str(event_json));
  }

  // Returns false if the call had already been answered.
  bool reply(int status, std::string_view payload_json) const { return state_->reply(status, payload_json); }
  bool ok(std::string_view payload_json) const { return reply(KEEL_OK, payload_json); }
  bool error(int status, std::string_view message) const {
    return reply(status, std::string(R"({"error":{"message":)") + json_quote(message) + "}}");
  }

 private:
  struct State {
    State(const keel_host_api* a, keel_call* c, std::string_view cap, std::string_view m, std::string_view p)
        : api(a), call(c), capability(cap), method(m), payload(p) {}
    ~State() {
      if (!replied.load()) reply(KEEL_ERR_INTERNAL, R"({"error":{"message":"the module dropped the request without replying"}})");
    }
    bool reply(int status, std::string_view payload_json) {
      bool expected = false;
      if (!replied.compare_exchange_strong(expected, true)) return false;
      api->reply(call, status, to_keel_str(payload_json));
      return true;
    }
    const keel_host_api* api;
    keel_call* call;
    std::string capability, method, payload;
    std::atomic<bool> replied{false};
  };
  std::shared_ptr<State> state_;
};

}  // namespace keel::sdk
