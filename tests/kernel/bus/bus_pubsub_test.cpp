// keel::Bus publish/subscribe through its real API: ordering and per-session sequence numbers,
// fan-out, topic prefixes, throwing subscribers, unsubscribe and drain.
#include "bus_test_support.hpp"

#include <keel/kernel/bus.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace keel;
using namespace keel::bus_test;
namespace json = boost::json;

namespace {

json::object lifecycle(const std::string& session, const char* type) {
  return json::object{{"type", type}, {"session_id", session}};
}

}  // namespace

TEST_CASE("bus: per-session seq is 1,2,3... without gaps and events arrive in publish order", "[bus][order]") {
  constexpr int kThreads = 4, kSessions = 3, kPerThread = 600;  // round-robin over the sessions
  constexpr std::size_t kTotal = std::size_t(kThreads) * kPerThread;

  std::vector<std::unique_ptr<Recorder>> recorders;  // declared before the Bus: outlive its threads
  for (int i = 0; i < 3; ++i) recorders.push_back(std::make_unique<Recorder>());
  Bus bus;
  for (auto& r : recorders) bus.subscribe("", r->handler());

  // What publish() returned, per thread: (session, seq) in the order that thread published.
  std::vector<std::vector<std::pair<std::string, std::uint64_t>>> returned(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> publishers;
  for (int t = 0; t < kThreads; ++t) {
    publishers.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();  // start together: real interleaving
      for (int n = 0; n < kPerThread; ++n) {
        std::string session = "s" + std::to_string(n % kSessions);
        auto body = lifecycle(session, "item.completed");
        body["thread"] = t;
        body["n"] = n;
        auto ev = bus.publish("turn.item.completed", std::move(body));
        returned[t].emplace_back(session, ev->seq());
      }
    });
  }
  for (auto& p : publishers) p.join();
  bus.drain();

  // The returned events carry the assigned seq; together they are exactly 1..N per session.
  std::map<std::string, std::vector<std::uint64_t>> assigned;
  for (auto& per_thread : returned) {
    std::map<std::string, std::uint64_t> last;
    for (auto& [session, seq] : per_thread) {
      CHECK(seq > last[session]);  // one thread's publishes get increasing seqs
      last[session] = seq;
      assigned[session].push_back(seq);
    }
  }
  for (auto& [session, seqs] : assigned) {
    std::sort(seqs.begin(), seqs.end());
    for (std::size_t i = 0; i < seqs.size(); ++i) REQUIRE(seqs[i] == i + 1);
  }

  std::vector<Seen> first;
  for (auto& rec : recorders) {
    REQUIRE(rec->wait_for_count(kTotal));
    auto seen = rec->seen();
    REQUIRE(seen.size() == kTotal);

    std::map<std::string, std::uint64_t> next_seq;
    std::map<std::int64_t, std::int64_t> next_n;
    for (auto& s : seen) {
      INFO("session " << s.session() << " thread " << s.num("thread") << " n " << s.num("n"));
      REQUIRE(s.has_seq());
      REQUIRE(s.seq() == ++next_seq[s.session()]);     // strictly 1,2,3... no gaps
      REQUIRE(s.num("n") == next_n[s.num("thread")]++);  // each publisher's events in its order
    }
    for (int k = 0; k < kSessions; ++k) CHECK(next_seq["s" + std::to_string(k)] == kTotal / kSessions);

    // Every subscriber sees one and the same total order.
    if (first.empty()) {
      first = seen;
    } else {
      for (std::size_t i = 0; i < kTotal; ++i) {
        REQUIRE(seen[i].session() == first[i].session());
        REQUIRE(seen[i].seq() == first[i].seq());
      }
    }
  }
  auto st = bus.stats();
  CHECK(st.published == kTotal);
  CHECK(st.delivered == 3 * kTotal);
  CHECK(st.dropped == 0);
  CHECK(st.coalesced == 0);
  CHECK(st.handler_errors == 0);
}

TEST_CASE("bus: seq is assigned by the bus and only to events with a session", "[bus][order]") {
  Recorder rec;
  Bus bus;
  bus.subscribe("", rec.handler());

  auto a = bus.publish("log", json::object{{"type", "note"}});
  auto b = bus.publish("turn.started", json::object{{"type", "turn.started"}, {"session_id", "A"}, {"seq", 999}});
  auto c = bus.publish("turn.started", json::object{{"type", "turn.started"}, {"session_id", "B"}});
  auto d = bus.publish("turn.completed", json::object{{"type", "turn.completed"}, {"session_id", "A"}});
  auto e = bus.publish("odd", json::object{{"type", "x"}, {"session_id", 5}});  // not a string: no session

  CHECK_FALSE(a->body().contains("seq"));
  CHECK(a->seq() == 0);
  CHECK(b->seq() == 1);  // a caller-supplied seq is replaced
  CHECK(c->seq() == 1);  // sessions count independently
  CHECK(d->seq() == 2);
  CHECK_FALSE(e->body().contains("seq"));
  CHECK(b->session_id() == "A");
  CHECK(b->type() == "turn.started");
  CHECK(a->session_id().empty());
  // json() is the serialized body, including the assigned seq.
  CHECK(d->json().find("\"seq\":2") != std::string::npos);

  REQUIRE(rec.wait_for_count(5));
  auto seen = rec.seen();
  REQUIRE(seen.size() == 5);
  CHECK(seen[1].seq() == 1);
  CHECK(seen[3].seq() == 2);
  CHECK(seen[0].topic == "log");
}

TEST_CASE("bus: every subscriber gets every event", "[bus][fanout]") {
  constexpr int kSubs = 8, kEvents = 200;
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < kSubs; ++i) recs.push_back(std::make_unique<Recorder>());
  Bus bus;
  for (auto& r : recs) bus.subscribe("", r->handler());
  for (int n = 0; n < kEvents; ++n) {
    bus.publish(n % 2 ? "turn.item.delta" : "turn.item.completed",
                json::object{{"type", "t"}, {"session_id", "s"}, {"n", n}}, n % 2 == 1);
  }
  bus.drain();
  for (auto& r : recs) {
    REQUIRE(r->count() == std::size_t(kEvents));
    auto seen = r->seen();
    for (int n = 0; n < kEvents; ++n) {
      REQUIRE(seen[n].num("n") == n);
      REQUIRE(seen[n].seq() == std::uint64_t(n + 1));
      REQUIRE(seen[n].coalescable == (n % 2 == 1));
    }
  }
  auto st = bus.stats();
  CHECK(st.published == std::uint64_t(kEvents));
  CHECK(st.delivered == std::uint64_t(kSubs * kEvents));
}

TEST_CASE("bus: subscribers receive exactly the topics that start with their prefix", "[bus][fanout]") {
  std::map<std::string, std::unique_ptr<Recorder>> recs;
  Bus bus;
  for (const char* prefix : {"", "turn.", "turn.item.", "tool.", "nothing.", "turn.item.delta"}) {
    recs[prefix] = std::make_unique<Recorder>();
    bus.subscribe(prefix, recs[prefix]->handler());
  }
  const std::vector<std::string> topics{"turn.started",        "turn.item.delta", "tool.call",
                                        "turn.item.completed", "session.configured", "turn",
                                        "tool.result",         "turn.completed"};
  for (auto& t : topics) bus.publish(t, json::object{{"type", t}});
  bus.drain();

  auto topics_of = [&](const std::string& prefix) {
    std::vector<std::string> out;
    for (auto& s : recs[prefix]->seen()) out.push_back(s.topic);
    return out;
  };
  auto expected = [&](const std::string& prefix) {
    std::vector<std::string> out;
    for (auto& t : topics)
      if (t.rfind(prefix, 0) == 0) out.push_back(t);
    return out;
  };
  CHECK(topics_of("") == topics);
  CHECK(topics_of("turn.") == expected("turn."));
  CHECK(topics_of("turn.") == std::vector<std::string>{"turn.started", "turn.item.delta", "turn.item.completed", "turn.completed"});
  CHECK(topics_of("turn.item.") == std::vector<std::string>{"turn.item.delta", "turn.item.completed"});
  CHECK(topics_of("tool.") == std::vector<std::string>{"tool.call", "tool.result"});
  CHECK(topics_of("turn.item.delta") == std::vector<std::string>{"turn.item.delta"});
  CHECK(topics_of("nothing.").empty());
}

TEST_CASE("bus: a throwing subscriber breaks neither the others nor its own later deliveries", "[bus][errors]") {
  constexpr int kEvents = 50;
  std::mutex log_mu;
  std::vector<std::string> log;
  std::atomic<int> std_calls{0}, other_calls{0};
  Recorder healthy_before, healthy_after;
  Bus bus;
  bus.set_error_log([&](std::string_view m) {
    std::lock_guard lock(log_mu);
    log.emplace_back(m);
  });

  bus.subscribe("", healthy_before.handler());
  auto thrower = bus.subscribe("", [&](const Event& e) {
    ++std_calls;
    throw std::runtime_error("boom " + std::string(e.type()));
  });
  bus.subscribe("", [&](const Event&) {
    ++other_calls;
    throw 42;  // not a std::exception
  });
  bus.subscribe("", healthy_after.handler());

  for (int n = 0; n < kEvents; ++n) bus.publish("turn.item.completed", json::object{{"type", "item.completed"}, {"n", n}});
  bus.drain();

  CHECK(std_calls == kEvents);    // it kept receiving after each throw
  CHECK(other_calls == kEvents);
  CHECK(healthy_before.count() == std::size_t(kEvents));
  CHECK(healthy_after.count() == std::size_t(kEvents));
  auto st = bus.stats();
  CHECK(st.handler_errors == std::uint64_t(2 * kEvents));
  CHECK(st.delivered == std::uint64_t(2 * kEvents));

  std::lock_guard lock(log_mu);
  REQUIRE(log.size() == std::size_t(2 * kEvents));
  auto mentions = [&](const std::string& needle) {
    return std::count_if(log.begin(), log.end(), [&](auto& m) { return m.find(needle) != std::string::npos; });
  };
  CHECK(mentions("boom item.completed") == kEvents);                              // the exception's text
  CHECK(mentions("subscriber " + std::to_string(thrower)) == kEvents);           // which subscriber
}

TEST_CASE("bus: unsubscribing from inside the handler does not deadlock and stops delivery", "[bus][unsubscribe]") {
  std::atomic<std::uint64_t> id{0};
  std::atomic<int> calls{0};
  Signal unsubscribed;
  Recorder other;
  Bus bus;
  bus.subscribe("", other.handler());
  id = bus.subscribe("", [&](const Event&) {
    ++calls;
    bus.unsubscribe(id.load());  // must return although we are the delivery in progress
    unsubscribed.set();
  });

  bus.publish("a", json::object{{"n", 1}});
  REQUIRE(unsubscribed.wait());
  for (int n = 2; n <= 10; ++n) bus.publish("a", json::object{{"n", n}});
  bus.drain();
  REQUIRE(other.wait_for_count(10));
  CHECK(calls == 1);
  bus.unsubscribe(id.load());  // again: a no-op
  bus.unsubscribe(987654321);  // unknown id: a no-op
}

TEST_CASE("bus: unsubscribe waits for a delivery in progress", "[bus][unsubscribe]") {
  Gate gate;
  Signal entered;
  std::atomic<bool> handler_done{false};
  std::atomic<int> calls{0};
  Recorder other;
  Bus bus;
  ScopeExit release([&] { gate.open(); });
  auto id = bus.subscribe("", [&](const Event&) {
    ++calls;
    entered.set();
    gate.wait();
    handler_done = true;
  });

  bus.publish("a", json::object{});
  REQUIRE(entered.wait());

  Signal returned;
  std::atomic<bool> done_when_returned{false};
  std::thread t([&] {
    bus.unsubscribe(id);
    done_when_returned = handler_done.load();
    returned.set();
  });
  // While the handler is blocked, unsubscribe must not return.
  CHECK_FALSE(returned.wait(std::chrono::milliseconds(50)));
  gate.open();
  CHECK(returned.wait());
  t.join();
  CHECK(done_when_returned);  // it returned only after the handler had finished

  // No more deliveries after unsubscribe.
  bus.subscribe("", other.handler());
  bus.publish("a", json::object{});
  bus.drain();
  CHECK(other.count() == 1);
  CHECK(calls == 1);
}

TEST_CASE("bus: drain waits until every queued event has been delivered", "[bus][drain]") {
  constexpr int kEvents = 100;
  Gate gate;
  Signal entered;
  std::atomic<int> handled{0};
  Recorder fast;
  Bus bus;
  ScopeExit release([&] { gate.open(); });
  bus.subscribe("", [&](const Event&) {
    entered.set();
    gate.wait();
    ++handled;
  });
  bus.subscribe("", fast.handler());

  for (int n = 0; n < kEvents; ++n) bus.publish("a", json::object{{"n", n}});
  REQUIRE(entered.wait());

  Signal drained;
  std::atomic<int> handled_when_drained{-1};
  std::thread t([&] {
    bus.drain();
    handled_when_drained = handled.load();
    drained.set();
  });
  CHECK_FALSE(drained.wait(std::chrono::milliseconds(50)));
  gate.open();
  CHECK(drained.wait());
  t.join();
  CHECK(handled_when_drained == kEvents);
  CHECK(fast.count() == std::size_t(kEvents));
}

TEST_CASE("bus: drain with no subscribers, and publishing from inside a handler", "[bus][drain]") {
  Recorder replies;
  Bus bus;
  bus.drain();  // nothing to wait for
  CHECK(bus.publish("x", json::object{})->topic() == "x");

  bus.subscribe("pong", replies.handler());
  bus.subscribe("ping", [&](const Event& e) {
    bus.publish("pong", json::object{{"n", e.body().at("n")}});  // re-entrant publish
    bus.drain();                                                 // drain from a handler: no self-wait
  });
  for (int n = 0; n < 20; ++n) bus.publish("ping", json::object{{"n", n}});
  REQUIRE(replies.wait_for_count(20));
  bus.drain();
  auto seen = replies.seen();
  for (int n = 0; n < 20; ++n) CHECK(seen[n].num("n") == n);
}

// Regression (was a bug, kernel/src/bus.cpp, Bus::unsubscribe lines 176-177 and Bus::deliver_loop lines 198-212):
// unsubscribing from inside one's own handler detaches the delivery thread, which then keeps
// using the Bus (`++delivered_`, `note_error`) after the handler returns. Nothing joins that
// thread, so if the Bus is destroyed meanwhile (a one-shot subscriber that unsubscribes itself
// on "turn.completed", then the session shuts down) the thread writes into freed memory.
// This test builds the Bus in its own storage, destroys it while the handler is still running,
// fills the storage with a pattern, lets the handler return and checks the pattern.
TEST_CASE("bus: a handler that unsubscribed itself does not touch the Bus after it is destroyed",
          "[bus][unsubscribe]") {
  alignas(Bus) unsigned char storage[sizeof(Bus)];
  Bus* bus = new (storage) Bus();

  std::atomic<std::uint64_t> id{0};
  Signal unsubscribed, thread_gone, destroyed;
  Gate may_return;
  std::shared_ptr<int> sentinel(new int(0), [&thread_gone](int* p) {
    delete p;
    thread_gone.set();  // the subscriber (and its handler) are gone: its thread has finished
  });
  id = bus->subscribe("", [bus, &id, &unsubscribed, &may_return, s = std::move(sentinel)](const Event&) {
    bus->unsubscribe(id.load());
    unsubscribed.set();
    may_return.wait();
  });
  bus->publish("once", json::object{});
  REQUIRE(unsubscribed.wait());

  std::thread destroyer([&] {
    bus->~Bus();
    std::memset(storage, 0xAB, sizeof storage);
    destroyed.set();
  });
  // If ~Bus waits for the handler (a fix), it cannot finish before the gate opens.
  destroyed.wait(std::chrono::milliseconds(100));
  may_return.open();
  REQUIRE(thread_gone.wait());
  destroyer.join();
  bool untouched = std::all_of(std::begin(storage), std::end(storage), [](unsigned char c) { return c == 0xAB; });
  CHECK(untouched);
}
