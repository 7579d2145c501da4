// keel::sdk::Host — the module's view of the host's function table, in C++.
#pragma once

#include <keel/abi.h>
#include <keel/sdk/strings.hpp>

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace keel::sdk {

struct Reply {
  int status = KEEL_OK;
  std::string payload;
  bool ok() const { return status == KEEL_OK; }
};

class Host {
 public:
  using EventFn = std::function<void(std::string_view topic, std::string_view event_json)>;
  using EmitFn = std::function<void(std::string_view event_json)>;
  using ReplyFn = std::function<void(int status, std::string_view payload_json)>;

  Host(const keel_host_api* api, keel_host* host) : api_(api), host_(host) {}
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;
  ~Host() {
    std::lock_guard lock(mu_);
    for (auto& [id, fn] : subscriptions_) api_->unsubscribe(host_, id);
  }

  const keel_host_api* api() const { return api_; }
  keel_host* handle() const { return host_; }

  void log(keel_log_level level, std::string_view message) const {
    api_->log(host_, level, to_keel_str(message));
  }
  void publish(std::string_view topic, std::string_view event_json) const {
    api_->publish(host_, to_keel_str(topic), to_keel_str(event_json));
  }

  // The callback is kept alive until unsubscribe() or the Host is destroyed.
  std::uint64_t subscribe(std::string_view topic_prefix, EventFn fn) {
    auto holder = std::make_unique<EventFn>(std::move(fn));
    auto trampoline = [](void* user, keel_str topic, keel_str event) {
      try {
        (*static_cast<EventFn*>(user))(to_view(topic), to_view(event));
      } catch (...) {
        // Never let an exception reach the host.
      }
    };
    std::uint64_t id = api_->subscribe(host_, to_keel_str(topic_prefix), trampoline, holder.get());
    if (id != 0) {
      std::lock_guard lock(mu_);
      subscriptions_.emplace(id, std::move(holder));
    }
    return id;
  }

  void unsubscribe(std::uint64_t id) {
    api_->unsubscribe(host_, id);  // returns only once no delivery is in progress
    std::lock_guard lock(mu_);
    subscriptions_.erase(id);
  }

  // Asynchronous request; on_reply runs exactly once, on any thread.
  std::uint64_t request(std::string_view topic, std::string_view payload_json, EmitFn on_emit,
                        ReplyFn on_reply) const {
    struct Pending {
      EmitFn emit;
      ReplyFn reply;
    };
    auto* pending = new Pending{std::move(on_emit), std::move(on_reply)};
    auto emit = [](void* user, keel_str event) {
      auto* p = static_cast<Pending*>(user);
      try {
        if (p->emit) p->emit(to_view(event));
      } catch (...) {
      }
    };
    auto reply = [](void* user, int status, keel_str payload) {
      std::unique_ptr<Pending> p(static_cast<Pending*>(user));
      try {
        if (p->reply) p->reply(status, to_view(payload));
      } catch (...) {
      }
    };
    return api_->request(host_, to_keel_str(topic), to_keel_str(payload_json), emit, reply, pending);
  }

  // Blocking request: waits for the reply.
  Reply request_wait(std::string_view topic, std::string_view payload_json, EmitFn on_emit = {}) const {
    auto promise = std::make_shared<std::promise<Reply>>();
    auto future = promise->get_future();
    request(topic, payload_json, std::move(on_emit), [promise](int status, std::string_view payload) {
      promise->set_value(Reply{status, std::string(payload)});
    });
    return future.get();
  }

  void cancel(std::uint64_t request_id) const { api_->cancel(host_, request_id); }

 private:
  const keel_host_api* api_;
  keel_host* host_;
  std::mutex mu_;
  std::map<std::uint64_t, std::unique_ptr<EventFn>> subscriptions_;
};

}  // namespace keel::sdk
