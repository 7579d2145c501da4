// A minimal host for testing a module through its real C ABI: dlopen the built library, call
// keel_module_entry, start an instance with a config, send requests and collect what comes
// back (emits, the one reply, logs, published events). Header-only; needs -ldl on old glibc.
//
//   keel::test::AbiTestHost host(KEEL_MODULE_PATH);
//   host.start(R"({"some":"config"})");
//   auto r = host.call("shell", "call", R"({"arguments":"{...}","cwd":"/tmp"})");
//   REQUIRE(r.status == KEEL_OK); r.payload; r.emits;
//
//   auto pending = host.begin("shell", "call", payload);   // runs handle() on its own thread
//   pending->cancel();                                      // is_cancelled() now returns 1
//   pending->wait(std::chrono::seconds(5));
#pragma once

#include <keel/abi.h>

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace keel::test {

struct HostLog {
  int level;
  std::string message;
};

struct Published {
  std::string topic;
  std::string event;
};

struct CallResult {
  int status = -1;
  std::string payload;
  std::vector<std::string> emits;
  int reply_count = 0;        // must be exactly 1
  int emits_after_reply = 0;  // must be 0
};

// One request in flight.
class PendingCall {
 public:
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_.load(); }

  // Waits for the reply; false on timeout.
  bool wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return result_.reply_count > 0; });
  }
  bool replied() const {
    std::lock_guard lock(mu_);
    return result_.reply_count > 0;
  }
  CallResult result() const {
    std::lock_guard lock(mu_);
    return result_;
  }
  std::vector<std::string> emits() const {
    std::lock_guard lock(mu_);
    return result_.emits;
  }
  // Blocks until at least `n` emits arrived (or the call was answered); false on timeout.
  bool wait_for_emits(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return result_.emits.size() >= n || result_.reply_count > 0; }) &&
           result_.emits.size() >= n;
  }

 private:
  friend class AbiTestHost;
  void on_emit(std::string_view event) {
    std::lock_guard lock(mu_);
    if (result_.reply_count > 0) ++result_.emits_after_reply;
    else result_.emits.emplace_back(event);
    cv_.notify_all();
  }
  void on_reply(int status, std::string_view payload) {
    std::lock_guard lock(mu_);
    if (++result_.reply_count == 1) {
      result_.status = status;
      result_.payload = std::string(payload);
    }
    cv_.notify_all();
  }

  std::string capability_, method_, payload_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  CallResult result_;
  std::thread worker_;
};

class AbiTestHost {
 public:
  // Answers host->request(); the default answers KEEL_ERR_NOT_FOUND.
  using RequestHandler = std::function<std::pair<int, std::string>(std::string_view topic, std::string_view payload)>;

  explicit AbiTestHost(const std::string& path) {
    lib_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib_) throw std::runtime_error(std::string("dlopen failed: ") + ::dlerror());
    auto entry = reinterpret_cast<keel_module_entry_fn>(::dlsym(lib_, KEEL_ENTRY_SYMBOL));
    if (!entry) {
      ::dlclose(lib_);
      throw std::runtime_error("no " KEEL_ENTRY_SYMBOL " in " + path);
    }
    module_ = entry(KEEL_ABI_MAJOR, KEEL_ABI_MINOR);
    if (!module_ || module_->abi_major != KEEL_ABI_MAJOR || module_->abi_minor > KEEL_ABI_MINOR) {
      ::dlclose(lib_);
      throw std::runtime_error("module ABI mismatch in " + path);
    }
    api_.abi_major = KEEL_ABI_MAJOR;
    api_.abi_minor = KEEL_ABI_MINOR;
    api_.struct_size = sizeof(keel_host_api);
    api_.log = &AbiTestHost::log_cb;
    api_.publish = &AbiTestHost::publish_cb;
    api_.subscribe = &AbiTestHost::subscribe_cb;
    api_.unsubscribe = &AbiTestHost::unsubscribe_cb;
    api_.request = &AbiTestHost::request_cb;
    api_.cancel = &AbiTestHost::cancel_cb;
    api_.emit = &AbiTestHost::emit_cb;
    api_.reply = &AbiTestHost::reply_cb;
    api_.is_cancelled = &AbiTestHost::is_cancelled_cb;
  }

  ~AbiTestHost() {
    stop();
    if (lib_) ::dlclose(lib_);
  }
  AbiTestHost(const AbiTestHost&) = delete;
  AbiTestHost& operator=(const AbiTestHost&) = delete;

  const keel_module& module() const { return *module_; }

  const keel_capability* capability(std::string_view name) const {
    for (std::size_t i = 0; i < module_->capability_count; ++i)
      if (name == module_->capabilities[i].name) return &module_->capabilities[i];
    return nullptr;
  }

  void start(std::string_view config_json = "{}") {
    char err[1024] = {0};
    int rc = module_->start(&api_, host_handle(), keel_str{config_json.data(), config_json.size()}, &instance_, err,
                            sizeof err);
    if (rc != KEEL_OK) throw std::runtime_error(std::string("module start failed: ") + err);
    started_ = true;
  }

  // Cancels and waits for every call still running, then stops the instance.
  void stop() {
    std::vector<std::shared_ptr<PendingCall>> calls;
    {
      std::lock_guard lock(mu_);
      calls = calls_;
    }
    for (auto& c : calls) {
      if (!c->replied()) c->cancel();
      if (c->worker_.joinable()) c->worker_.join();
    }
    if (started_) module_->stop(instance_);
    started_ = false;
  }

  // Starts handle() on a thread of its own and returns at once.
  std::shared_ptr<PendingCall> begin(std::string capability, std::string method, std::string payload) {
    auto c = std::make_shared<PendingCall>();
    c->capability_ = std::move(capability);
    c->method_ = std::move(method);
    c->payload_ = std::move(payload);
    {
      std::lock_guard lock(mu_);
      calls_.push_back(c);
    }
    PendingCall* raw = c.get();
    c->worker_ = std::thread([this, raw] {
      module_->handle(instance_, reinterpret_cast<keel_call*>(raw), to_str(raw->capability_), to_str(raw->method_),
                      to_str(raw->payload_));
    });
    return c;
  }

  // Sends a request and waits for its reply (throws if none comes in time).
  CallResult call(std::string capability, std::string method, std::string payload,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    auto c = begin(std::move(capability), std::move(method), std::move(payload));
    if (!c->wait(timeout)) throw std::runtime_error("no reply within the timeout");
    if (c->worker_.joinable()) c->worker_.join();  // handle() returned too
    return c->result();
  }

  void set_request_handler(RequestHandler handler) {
    std::lock_guard lock(mu_);
    request_handler_ = std::move(handler);
  }

  std::vector<HostLog> logs() const {
    std::lock_guard lock(mu_);
    return logs_;
  }
  std::vector<Published> published() const {
    std::lock_guard lock(mu_);
    return published_;
  }

 private:
  static keel_str to_str(const std::string& s) { return keel_str{s.data(), s.size()}; }
  static std::string_view view(keel_str s) { return s.ptr ? std::string_view(s.ptr, s.len) : std::string_view(); }
  keel_host* host_handle() { return reinterpret_cast<keel_host*>(this); }
  static AbiTestHost* self(keel_host* h) { return reinterpret_cast<AbiTestHost*>(h); }
  static PendingCall* pending(keel_call* c) { return reinterpret_cast<PendingCall*>(c); }

  static void log_cb(keel_host* h, int level, keel_str message) {
    auto* s = self(h);
    std::lock_guard lock(s->mu_);
    s->logs_.push_back({level, std::string(view(message))});
  }
  static void publish_cb(keel_host* h, keel_str topic, keel_str event) {
    auto* s = self(h);
    std::lock_guard lock(s->mu_);
    s->published_.push_back({std::string(view(topic)), std::string(view(event))});
  }
  static uint64_t subscribe_cb(keel_host* h, keel_str, keel_event_fn, void*) {
    return ++self(h)->next_id_;
  }
  static void unsubscribe_cb(keel_host*, uint64_t) {}
  static uint64_t request_cb(keel_host* h, keel_str topic, keel_str payload, keel_emit_fn, keel_reply_fn on_reply,
                             void* user) {
    auto* s = self(h);
    RequestHandler handler;
    {
      std::lock_guard lock(s->mu_);
      handler = s->request_handler_;
    }
    std::pair<int, std::string> answer{KEEL_ERR_NOT_FOUND,
                                       R"({"error":{"message":"the test host serves no topics"}})"};
    if (handler) answer = handler(view(topic), view(payload));
    on_reply(user, answer.first, to_str(answer.second));
    return ++s->next_id_;
  }
  static void cancel_cb(keel_host*, uint64_t) {}
  static void emit_cb(keel_call* c, keel_str event) { pending(c)->on_emit(view(event)); }
  static void reply_cb(keel_call* c, int status, keel_str payload) { pending(c)->on_reply(status, view(payload)); }
  static int is_cancelled_cb(keel_call* c) { return pending(c)->cancelled() ? 1 : 0; }

  void* lib_ = nullptr;
  const keel_module* module_ = nullptr;
  keel_host_api api_{};
  void* instance_ = nullptr;
  bool started_ = false;
  std::atomic<uint64_t> next_id_{0};
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<PendingCall>> calls_;
  std::vector<HostLog> logs_;
  std::vector<Published> published_;
  RequestHandler request_handler_;
};

}  // namespace keel::test
