// Small synchronisation helpers for the bus tests: every wait is bounded, so a broken bus makes
// a test fail with a clear message instead of hanging the suite.
#pragma once

#include <keel/kernel/bus.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace keel::bus_test {

using namespace std::chrono_literals;

// Generous upper bound for "this must happen": only reached when the bus is broken.
inline constexpr auto kTimeout = 4s;

// A one-shot gate: handlers block in wait() until the test calls open(). wait() gives up after
// kTimeout (returning false) so a failed test cannot wedge a delivery thread forever.
class Gate {
 public:
  // Notifies under the lock: a waiter may destroy the gate as soon as it sees it open.
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kTimeout, [&] { return open_; });
  }
  bool is_open() const {
    std::lock_guard lock(mu_);
    return open_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Runs a function at scope exit (used to open gates before the Bus is destroyed).
class ScopeExit {
 public:
  explicit ScopeExit(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~ScopeExit() {
    if (fn_) fn_();
  }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  std::function<void()> fn_;
};

// What a subscriber saw of one event (Event itself is not copyable).
struct Seen {
  std::string topic;
  boost::json::object body;
  bool coalescable = false;

  std::string type() const {
    auto* v = body.if_contains("type");
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
  }
  std::string session() const {
    auto* v = body.if_contains("session_id");
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
  }
  std::string str(const char* key) const {
    auto* v = body.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
  }
  std::int64_t num(const char* key) const {
    auto* v = body.if_contains(key);
    if (!v) return -1;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    return -1;
  }
  bool has_seq() const { return body.contains("seq"); }
  std::uint64_t seq() const { return static_cast<std::uint64_t>(num("seq")); }
};

// Records every event a subscriber receives; lets the test wait (bounded) for a count.
class Recorder {
 public:
  Bus::Handler handler() {
    return [this](const Event& e) { record(e); };
  }
  void record(const Event& e) {
    std::lock_guard lock(mu_);
    seen_.push_back(Seen{e.topic(), e.body(), e.coalescable()});
    cv_.notify_all();
  }
  // Waits until at least n events were seen; false on timeout.
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout = kTimeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return seen_.size() >= n; });
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Seen> seen_;
};

// A flag another thread sets; wait() is bounded.
class Signal {
 public:
  // Notifies under the lock: a waiter may destroy the signal as soon as it sees it set.
  void set() {
    std::lock_guard lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool wait(std::chrono::milliseconds timeout = kTimeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }
  bool is_set() const {
    std::lock_guard lock(mu_);
    return set_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

}  // namespace keel::bus_test
