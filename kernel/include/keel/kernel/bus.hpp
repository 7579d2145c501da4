// The message bus: topics with publish/subscribe, and request/reply with correlation ids.
//
// Each subscriber owns a bounded queue and a delivery thread, so one that is slow or throws
// never stalls or breaks another. Events of one session carry strictly increasing sequence
// numbers and are delivered in that order. Under pressure, streaming deltas are coalesced
// (or, failing that, dropped and counted); lifecycle events are never dropped.
#pragma once

#include <boost/json/object.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace keel {

class Event {
 public:
  Event(std::string topic, boost::json::object body, bool coalescable);
  const std::string& topic() const { return topic_; }
  const boost::json::object& body() const { return body_; }
  std::string_view type() const;
  std::string_view session_id() const;
  std::uint64_t seq() const;
  bool coalescable() const { return coalescable_; }
  const std::string& json() const;  // serialized once, on first use

 private:
  friend class Bus;
  std::string topic_;
  boost::json::object body_;
  bool coalescable_;
  mutable std::once_flag json_once_;
  mutable std::string json_;
};
using EventPtr = std::shared_ptr<const Event>;

// One request in flight. The server answers it exactly once with reply(); emit() streams
// partials before that. Extra replies are ignored (and reported by the return value).
class Request : public std::enable_shared_from_this<Request> {
 public:
  using EmitFn = std::function<void(std::string_view event_json)>;
  using ReplyFn = std::function<void(int status, std::string_view payload_json)>;

  Request(std::uint64_t id, std::string topic, std::string method, std::string payload, EmitFn on_emit,
          ReplyFn on_reply);
  ~Request();

  std::uint64_t id() const { return id_; }
  const std::string& topic() const { return topic_; }
  const std::string& method() const { return method_; }
  const std::string& payload() const { return payload_; }
  bool cancelled() const { return cancelled_.load(); }
  bool replied() const { return replied_.load(); }

  void emit(std::string_view event_json);
  bool reply(int status, std::string_view payload_json);
  void cancel();
  // Runs once when the request is cancelled (immediately if it already was).
  void on_cancel(std::function<void()> fn);

 private:
  std::uint64_t id_;
  std::string topic_, method_, payload_;
  EmitFn on_emit_;
  ReplyFn on_reply_;
  std::atomic<bool> replied_{false}, cancelled_{false};
  std::mutex cancel_mu_;
  std::mutex emit_mu_;
  std::function<void()> cancel_fn_;
};
using RequestPtr = std::shared_ptr<Request>;

struct BusStats {
  std::uint64_t published = 0, delivered = 0, coalesced = 0, dropped = 0, handler_errors = 0;
};

class Bus {
 public:
  using Handler = std::function<void(const Event&)>;
  using Server = std::function<void(const RequestPtr&)>;
  using ErrorLog = std::function<void(std::string_view message)>;

  explicit Bus(std::size_t default_queue_capacity = 4096);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  void set_error_log(ErrorLog log);

  // Subscribes to every topic that starts with topic_prefix ("" for all).
  std::uint64_t subscribe(std::string topic_prefix, Handler handler, std::size_t queue_capacity = 0);
  // Stops delivery; waits for a delivery in progress unless called from that very handler.
  void unsubscribe(std::uint64_t id);

  // Publishes an event. If it has "session_id", "seq" is assigned here. Returns the event.
  EventPtr publish(std::string topic, boost::json::object body, bool coalescable = false);

  // Waits until every queue published so far has been delivered.
  void drain();

  // Request/reply. A server answers requests for "<server>.<method>" topics; serve() replaces
  // any previous server of that name.
  void serve(std::string server, Server fn);
  void unserve(const std::string& server);
  bool has_server(const std::string& server) const;
  // Dispatches on the caller's thread. If nobody serves the topic, replies KEEL_ERR_NOT_FOUND.
  // Returns the request id (for cancel()); the server holds the request until it replies.
  // `before_dispatch` (optional) gets the id before the server runs, so a caller can record
  // it where another thread will find it to cancel a server that blocks until done.
  std::uint64_t request(std::string_view topic, std::string payload, Request::EmitFn on_emit,
                        Request::ReplyFn on_reply, const std::function<void(std::uint64_t)>& before_dispatch = {});
  void cancel(std::uint64_t request_id);

  BusStats stats() const;

 private:
  struct Subscriber;
  void deliver_loop(const std::shared_ptr<Subscriber>& sub);
  void note_error(std::string_view message);

  std::size_t default_capacity_;
  mutable std::mutex mu_;  // guards subscribers_, sequences_, servers_, in_flight_
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
  std::unordered_map<std::string, std::uint64_t> sequences_;
  std::unordered_map<std::string, Server> servers_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Request>> in_flight_;
  std::atomic<std::uint64_t> next_id_{1};
  ErrorLog error_log_;
  std::vector<std::thread> retired_;  // delivery threads of subscribers removed from their own handler
  std::atomic<std::uint64_t> published_{0}, delivered_{0}, coalesced_{0}, dropped_{0}, handler_errors_{0};
};

}  // namespace keel
