#include <keel/abi.h>
#include <keel/kernel/bus.hpp>

#include <boost/json/serialize.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <thread>

namespace keel {

// ---- Event ------------------------------------------------------------------------------

Event::Event(std::string topic, boost::json::object body, bool coalescable)
    : topic_(std::move(topic)), body_(std::move(body)), coalescable_(coalescable) {}

static std::string_view string_field(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->as_string()) : std::string_view{};
}

std::string_view Event::type() const { return string_field(body_, "type"); }
std::string_view Event::session_id() const { return string_field(body_, "session_id"); }
std::uint64_t Event::seq() const {
  auto* v = body_.if_contains("seq");
  return v && v->is_uint64() ? v->as_uint64() : (v && v->is_int64() ? static_cast<std::uint64_t>(v->as_int64()) : 0);
}
const std::string& Event::json() const {
  std::call_once(json_once_, [this] { json_ = boost::json::serialize(body_); });
  return json_;
}

// ---- Request ----------------------------------------------------------------------------

Request::Request(std::uint64_t id, std::string topic, std::string method, std::string payload, EmitFn on_emit,
                 ReplyFn on_reply)
    : id_(id),
      topic_(std::move(topic)),
      method_(std::move(method)),
      payload_(std::move(payload)),
      on_emit_(std::move(on_emit)),
      on_reply_(std::move(on_reply)) {}

Request::~Request() {
  // The last reference went away unanswered: the server lost it. Answer so no caller hangs.
  if (!replied_.load()) reply(KEEL_ERR_INTERNAL, R"({"error":{"message":"request dropped without a reply"}})");
}

void Request::emit(std::string_view event_json) {
  std::lock_guard lock(emit_mu_);  // a reply waits for an emit in progress, so none follows it
  if (replied_.load() || !on_emit_) return;
  try {
    on_emit_(event_json);
  } catch (...) {
    // A caller's emit handler must not break the server.
  }
}

bool Request::reply(int status, std::string_view payload_json) {
  bool expected = false;
  if (!replied_.compare_exchange_strong(expected, true)) return false;
  { std::lock_guard wait_for_emits(emit_mu_); }
  if (on_reply_) {
    try {
      on_reply_(status, payload_json);
    } catch (...) {
    }
  }
  on_reply_ = nullptr;
  return true;
}

void Request::cancel() {
  if (cancelled_.exchange(true)) return;
  std::function<void()> fn;
  {
    std::lock_guard lock(cancel_mu_);
    fn = std::move(cancel_fn_);
  }
  if (fn) fn();
}

void Request::on_cancel(std::function<void()> fn) {
  {
    std::lock_guard lock(cancel_mu_);
    if (!cancelled_.load()) {
      cancel_fn_ = std::move(fn);
      return;
    }
  }
  fn();
}

// ---- Bus --------------------------------------------------------------------------------

struct Bus::Subscriber {
  std::uint64_t id = 0;
  std::string prefix;
  Handler handler;
  std::size_t capacity = 0;

  std::mutex mu;
  std::condition_variable cv;       // wakes the delivery thread
  std::condition_variable idle_cv;  // wakes drain()/unsubscribe()
  std::deque<EventPtr> queue;
  bool stopping = false;
  bool delivering = false;
  std::thread::id thread_id;
  std::thread thread;
};

Bus::Bus(std::size_t default_queue_capacity) : default_capacity_(default_queue_capacity ? default_queue_capacity : 4096) {}

Bus::~Bus() {
  std::vector<std::shared_ptr<Subscriber>> subs;
  std::vector<std::thread> retired;
  {
    std::lock_guard lock(mu_);
    subs.swap(subscribers_);
    retired.swap(retired_);
  }
  for (auto& t : retired)
    if (t.joinable()) {
      if (t.get_id() == std::this_thread::get_id()) t.detach();
      else t.join();
    }
  for (auto& s : subs) {
    {
      std::lock_guard lock(s->mu);
      s->stopping = true;
    }
    s->cv.notify_all();
    if (s->thread.joinable()) {
      if (s->thread.get_id() == std::this_thread::get_id()) s->thread.detach();
      else s->thread.join();
    }
  }
}

void Bus::set_error_log(ErrorLog log) {
  std::lock_guard lock(mu_);
  error_log_ = std::move(log);
}

void Bus::note_error(std::string_view message) {
  ErrorLog log;
  {
    std::lock_guard lock(mu_);
    log = error_log_;
  }
  if (log) log(message);
}

std::uint64_t Bus::subscribe(std::string topic_prefix, Handler handler, std::size_t queue_capacity) {
  auto sub = std::make_shared<Subscriber>();
  sub->id = next_id_++;
  sub->prefix = std::move(topic_prefix);
  sub->handler = std::move(handler);
  sub->capacity = queue_capacity ? queue_capacity : default_capacity_;
  sub->thread = std::thread([this, sub] { deliver_loop(sub); });
  std::lock_guard lock(mu_);
  subscribers_.push_back(sub);
  return sub->id;
}

void Bus::unsubscribe(std::uint64_t id) {
  std::shared_ptr<Subscriber> sub;
  {
    std::lock_guard lock(mu_);
    for (auto it = subscribers_.begin(); it != subscribers_.end(); ++it) {
      if ((*it)->id == id) {
        sub = *it;
        subscribers_.erase(it);
        break;
      }
    }
  }
  if (!sub) return;
  {
    std::lock_guard lock(sub->mu);
    sub->stopping = true;
  }
  sub->cv.notify_all();
  if (sub->thread.get_id() == std::this_thread::get_id()) {
    // Unsubscribing from inside its own handler: the thread ends after the handler returns;
    // the destructor joins it.
    std::lock_guard lock(mu_);
    retired_.push_back(std::move(sub->thread));
  } else if (sub->thread.joinable()) {
    sub->thread.join();
  }
}

void Bus::deliver_loop(const std::shared_ptr<Subscriber>& sub) {
  {
    std::lock_guard lock(sub->mu);
    sub->thread_id = std::this_thread::get_id();
  }
  for (;;) {
    EventPtr ev;
    {
      std::unique_lock lock(sub->mu);
      sub->cv.wait(lock, [&] { return sub->stopping || !sub->queue.empty(); });
      if (sub->stopping) break;
      ev = std::move(sub->queue.front());
      sub->queue.pop_front();
      sub->delivering = true;
    }
    try {
      sub->handler(*ev);
      ++delivered_;
    } catch (const std::exception& e) {
      ++handler_errors_;
      note_error("bus: subscriber " + std::to_string(sub->id) + " threw on '" + std::string(ev->type()) + "': " + e.what());
    } catch (...) {
      ++handler_errors_;
      note_error("bus: subscriber " + std::to_string(sub->id) + " threw a non-standard exception");
    }
    {
      std::lock_guard lock(sub->mu);
      sub->delivering = false;
    }
    sub->idle_cv.notify_all();
  }
  sub->idle_cv.notify_all();
}

static bool prefix_matches(const std::string& prefix, const std::string& topic) {
  return topic.compare(0, prefix.size(), prefix) == 0;
}

// Merges a delta into the newest queued delta of the same item, if there is one.
static bool try_coalesce(std::deque<EventPtr>& queue, const EventPtr& ev) {
  if (queue.empty()) return false;
  const EventPtr& last = queue.back();
  if (!last->coalescable() || last->topic() != ev->topic() || last->session_id() != ev->session_id()) return false;
  auto item = [](const Event& e) { return string_field(e.body(), "item_id"); };
  if (item(*last) != item(*ev) || last->type() != ev->type()) return false;
  auto merged_body = last->body();
  std::string delta(string_field(last->body(), "delta"));
  delta += string_field(ev->body(), "delta");
  merged_body["delta"] = delta;
  if (ev->body().contains("seq")) merged_body["seq"] = ev->seq();
  queue.back() = std::make_shared<Event>(ev->topic(), std::move(merged_body), true);
  return true;
}

EventPtr Bus::publish(std::string topic, boost::json::object body, bool coalescable) {
  std::lock_guard lock(mu_);  // one order for everyone: seq assignment and enqueueing together
  if (auto* sid = body.if_contains("session_id"); sid && sid->is_string())
    body["seq"] = ++sequences_[std::string(sid->as_string())];
  auto ev = std::make_shared<Event>(std::move(topic), std::move(body), coalescable);
  ++published_;
  for (auto& sub : subscribers_) {
    if (!prefix_matches(sub->prefix, ev->topic())) continue;
    {
      std::lock_guard sub_lock(sub->mu);
      if (sub->queue.size() >= sub->capacity && coalescable) {
        if (try_coalesce(sub->queue, ev)) ++coalesced_;
        else ++dropped_;
        continue;
      }
      sub->queue.push_back(ev);  // lifecycle events go in even past capacity
    }
    sub->cv.notify_one();
  }
  return ev;
}

void Bus::drain() {
  std::vector<std::shared_ptr<Subscriber>> subs;
  {
    std::lock_guard lock(mu_);
    subs = subscribers_;
  }
  for (auto& sub : subs) {
    std::unique_lock lock(sub->mu);
    if (sub->thread_id == std::this_thread::get_id()) continue;  // draining from a handler
    sub->idle_cv.wait(lock, [&] { return sub->stopping || (sub->queue.empty() && !sub->delivering); });
  }
}

void Bus::serve(std::string server, Server fn) {
  std::lock_guard lock(mu_);
  servers_[std::move(server)] = std::move(fn);
}

void Bus::unserve(const std::string& server) {
  std::lock_guard lock(mu_);
  servers_.erase(server);
}

bool Bus::has_server(const std::string& server) const {
  std::lock_guard lock(mu_);
  return servers_.count(server) != 0;
}

std::uint64_t Bus::request(std::string_view topic, std::string payload, Request::EmitFn on_emit,
                           Request::ReplyFn on_reply, const std::function<void(std::uint64_t)>& before_dispatch) {
  auto dot = topic.rfind('.');
  std::string server(dot == std::string_view::npos ? topic : topic.substr(0, dot));
  std::string method(dot == std::string_view::npos ? std::string_view{} : topic.substr(dot + 1));
  auto req = std::make_shared<Request>(next_id_++, std::string(topic), std::move(method), std::move(payload),
                                       std::move(on_emit), std::move(on_reply));
  Server fn;
  {
    std::lock_guard lock(mu_);
    if (auto it = servers_.find(server); it != servers_.end()) fn = it->second;
    if (fn) {
      in_flight_[req->id()] = req;
      if (in_flight_.size() > 1024) std::erase_if(in_flight_, [](auto& kv) { return kv.second.expired(); });
    }
  }
  if (!fn) {
    boost::json::object err{{"error", boost::json::object{{"message", "nothing serves '" + server + "'"}}}};
    req->reply(KEEL_ERR_NOT_FOUND, boost::json::serialize(err));
    return req->id();
  }
  try {
    if (before_dispatch) before_dispatch(req->id());
    fn(req);
  } catch (const std::exception& e) {
    boost::json::object err{{"error", boost::json::object{{"message", std::string("server '") + server + "' failed: " + e.what()}}}};
    req->reply(KEEL_ERR_INTERNAL, boost::json::serialize(err));
  } catch (...) {
    boost::json::object err{{"error", boost::json::object{{"message", "server '" + server + "' failed"}}}};
    req->reply(KEEL_ERR_INTERNAL, boost::json::serialize(err));
  }
  return req->id();
}

void Bus::cancel(std::uint64_t request_id) {
  RequestPtr req;
  {
    std::lock_guard lock(mu_);
    if (auto it = in_flight_.find(request_id); it != in_flight_.end()) req = it->second.lock();
  }
  if (req) req->cancel();
}

BusStats Bus::stats() const {
  return BusStats{published_.load(), delivered_.load(), coalesced_.load(), dropped_.load(), handler_errors_.load()};
}

}  // namespace keel
