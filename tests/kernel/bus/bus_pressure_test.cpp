// keel::Bus under pressure: a stalled subscriber delays nobody else, its bounded queue
// coalesces streaming deltas, and lifecycle events are never dropped.
#include "bus_test_support.hpp"

#include <keel/kernel/bus.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <string>
#include <vector>

using namespace keel;
using namespace keel::bus_test;
namespace json = boost::json;

namespace {

constexpr const char* kSession = "sess-1";

json::object lifecycle(const char* type, const std::string& item = {}) {
  json::object o{{"type", type}, {"session_id", kSession}};
  if (!item.empty()) o["item_id"] = item;
  return o;
}

json::object delta(const std::string& item, const std::string& text) {
  return json::object{{"type", "item.delta"}, {"session_id", kSession}, {"item_id", item}, {"delta", text}};
}

std::string token(const std::string& item, int n) { return "<" + item + ":" + std::to_string(n) + ">"; }

// Parses "<a:1><a:2>" into the token numbers for `item`; -1 marks a token of another item.
std::vector<int> tokens_of(const std::string& text, const std::string& item) {
  std::vector<int> out;
  std::size_t pos = 0;
  while ((pos = text.find('<', pos)) != std::string::npos) {
    auto colon = text.find(':', pos), end = text.find('>', pos);
    std::string who = text.substr(pos + 1, colon - pos - 1);
    out.push_back(who == item ? std::stoi(text.substr(colon + 1, end - colon - 1)) : -1);
    pos = end;
  }
  return out;
}

// A subscriber that blocks inside its first delivery until the gate opens.
struct Staller {
  Gate gate;
  Signal entered;
  Recorder rec;
  Bus::Handler handler() {
    return [this](const Event& e) {
      if (!entered.is_set()) {
        entered.set();
        gate.wait();
      }
      rec.record(e);
    };
  }
};

}  // namespace

TEST_CASE("bus: a stalled subscriber does not delay the others", "[bus][pressure]") {
  constexpr int kEvents = 500;
  Staller stalled;
  Recorder fast1, fast2;
  Bus bus;
  ScopeExit release([&] { stalled.gate.open(); });
  bus.subscribe("", fast1.handler());
  bus.subscribe("", stalled.handler());
  bus.subscribe("", fast2.handler());

  bus.publish("turn.started", lifecycle("turn.started"));
  REQUIRE(stalled.entered.wait());
  for (int n = 1; n < kEvents; ++n) {
    if (n % 5 == 0) bus.publish("turn.item.completed", lifecycle("item.completed", "i" + std::to_string(n)));
    else bus.publish("turn.item.delta", delta("i" + std::to_string(n - n % 5 + 5), "x"), true);
  }

  // The others get everything while the stalled one is still blocked in its first delivery.
  CHECK(fast1.wait_for_count(kEvents));
  CHECK(fast2.wait_for_count(kEvents));
  CHECK(stalled.rec.count() == 0);
  CHECK_FALSE(stalled.gate.is_open());

  stalled.gate.open();
  REQUIRE(stalled.rec.wait_for_count(kEvents));
  bus.drain();
  auto a = fast1.seen(), b = stalled.rec.seen();
  REQUIRE(a.size() == std::size_t(kEvents));
  REQUIRE(b.size() == std::size_t(kEvents));  // default capacity: nothing merged or dropped
  for (int n = 0; n < kEvents; ++n) {
    REQUIRE(a[n].seq() == std::uint64_t(n + 1));
    REQUIRE(b[n].seq() == std::uint64_t(n + 1));
  }
  CHECK(bus.stats().dropped == 0);
  CHECK(bus.stats().coalesced == 0);
}

TEST_CASE("bus: a full queue merges deltas into the last queued delta, text complete and in order",
          "[bus][pressure][coalesce]") {
  constexpr int kDeltas = 100;
  Staller stalled;
  Recorder fast;
  Bus bus;
  ScopeExit release([&] { stalled.gate.open(); });
  bus.subscribe("turn.", stalled.handler(), /*queue_capacity=*/4);
  bus.subscribe("turn.", fast.handler());

  bus.publish("turn.started", lifecycle("turn.started"));  // seq 1: the stalled one blocks on it
  REQUIRE(stalled.entered.wait());
  bus.publish("turn.item.started", lifecycle("item.started", "msg"));  // seq 2
  std::string expected;
  for (int n = 0; n < kDeltas; ++n) {  // seq 3 .. 102
    expected += token("msg", n);
    bus.publish("turn.item.delta", delta("msg", token("msg", n)), true);
  }
  bus.publish("turn.item.completed", lifecycle("item.completed", "msg"));  // seq 103
  bus.publish("turn.completed", lifecycle("turn.completed"));             // seq 104
  constexpr std::uint64_t kLast = 2 + kDeltas + 2;

  REQUIRE(fast.wait_for_count(kLast));
  stalled.gate.open();
  bus.drain();

  auto seen = stalled.rec.seen();
  std::string text;
  std::vector<std::string> lifecycle_types;
  std::vector<std::uint64_t> lifecycle_seqs;
  std::size_t delta_events = 0;
  std::uint64_t prev_seq = 0;
  for (auto& s : seen) {
    INFO("type " << s.type() << " seq " << s.seq());
    CHECK(s.seq() > prev_seq);  // still strictly increasing after merging
    prev_seq = s.seq();
    if (s.type() == "item.delta") {
      CHECK(s.coalescable);
      CHECK(s.str("item_id") == "msg");
      CHECK(s.session() == kSession);
      text += s.str("delta");
      ++delta_events;
    } else {
      lifecycle_types.push_back(s.type());
      lifecycle_seqs.push_back(s.seq());
    }
  }
  CHECK(text == expected);  // nothing had to be dropped: every delta, in order
  CHECK(delta_events < std::size_t(kDeltas));
  CHECK(lifecycle_types == std::vector<std::string>{"turn.started", "item.started", "item.completed", "turn.completed"});
  CHECK(lifecycle_seqs == std::vector<std::uint64_t>{1, 2, kLast - 1, kLast});
  // The last merged delta carries the seq of the newest delta folded into it.
  REQUIRE(seen.size() >= 3);
  CHECK(seen[seen.size() - 3].seq() == kLast - 2);

  auto st = bus.stats();
  CHECK(st.dropped == 0);
  CHECK(st.coalesced + delta_events == std::size_t(kDeltas));  // every merge removed one delivery

  // The unpressured subscriber got every delta on its own.
  auto all = fast.seen();
  REQUIRE(all.size() == kLast);
  std::string fast_text;
  for (auto& s : all) fast_text += s.str("delta");
  CHECK(fast_text == expected);
}

TEST_CASE("bus: under pressure deltas never mix items and lifecycle events are never dropped",
          "[bus][pressure][coalesce]") {
  constexpr int kPerItem = 60;
  Staller stalled;
  Bus bus;
  ScopeExit release([&] { stalled.gate.open(); });
  bus.subscribe("", stalled.handler(), /*queue_capacity=*/2);

  bus.publish("turn.started", lifecycle("turn.started"));
  REQUIRE(stalled.entered.wait());
  std::vector<std::string> lifecycle_sent{"turn.started"};
  for (int n = 0; n < kPerItem; ++n) {  // two items streaming at once, plus lifecycle in between
    bus.publish("turn.item.delta", delta("a", token("a", n)), true);
    bus.publish("turn.item.delta", delta("b", token("b", n)), true);
    if (n % 10 == 9) {
      bus.publish("turn.item.progress", lifecycle("item.progress", "a"));
      lifecycle_sent.push_back("item.progress");
    }
  }
  bus.publish("turn.item.completed", lifecycle("item.completed", "a"));
  bus.publish("turn.item.completed", lifecycle("item.completed", "b"));
  bus.publish("turn.completed", lifecycle("turn.completed"));
  for (auto* t : {"item.completed", "item.completed", "turn.completed"}) lifecycle_sent.push_back(t);

  stalled.gate.open();
  bus.drain();

  std::vector<std::string> lifecycle_seen;
  std::map<std::string, int> last_token{{"a", -1}, {"b", -1}};
  std::size_t delta_events = 0;
  std::uint64_t prev_seq = 0;
  for (auto& s : stalled.rec.seen()) {
    CHECK(s.seq() > prev_seq);
    prev_seq = s.seq();
    if (s.type() != "item.delta") {
      lifecycle_seen.push_back(s.type());
      continue;
    }
    ++delta_events;
    auto item = s.str("item_id");
    for (int t : tokens_of(s.str("delta"), item)) {
      INFO("item " << item << " delta " << s.str("delta"));
      CHECK(t >= 0);                 // only this item's text
      CHECK(t > last_token[item]);   // in order, never duplicated
      last_token[item] = t;
    }
  }
  CHECK(lifecycle_seen == lifecycle_sent);  // all of them, in order
  auto st = bus.stats();
  CHECK(st.coalesced + st.dropped + delta_events == std::size_t(2 * kPerItem));
  CHECK(st.coalesced + st.dropped > 0);
}

TEST_CASE("bus: lifecycle events are queued past capacity and all delivered after a stall", "[bus][pressure]") {
  constexpr int kEvents = 1000;
  Staller stalled;
  Bus bus(/*default_queue_capacity=*/1);
  ScopeExit release([&] { stalled.gate.open(); });
  bus.subscribe("", stalled.handler());

  bus.publish("turn.started", lifecycle("turn.started"));
  REQUIRE(stalled.entered.wait());
  for (int n = 1; n < kEvents; ++n) {
    bus.publish("turn.item.completed", lifecycle("item.completed", std::to_string(n)));
    bus.publish("turn.item.delta", delta(std::to_string(n), "lost?"), true);  // queue is full: may go
  }
  stalled.gate.open();
  bus.drain();

  std::uint64_t expected_seq = 1;  // lifecycle seqs: 1, 2, 4, 6, ... (deltas took the odd ones)
  int lifecycle_count = 0;
  for (auto& s : stalled.rec.seen()) {
    if (s.type() == "item.delta") continue;
    REQUIRE(s.seq() == expected_seq);
    expected_seq = lifecycle_count == 0 ? 2 : expected_seq + 2;
    ++lifecycle_count;
  }
  CHECK(lifecycle_count == kEvents);
  CHECK(bus.stats().dropped + bus.stats().coalesced > 0);
}

// Regression (was a bug, kernel/src/bus.cpp try_coalesce line 232): merging always writes
// `merged_body["seq"] = ev->seq()`, so deltas without a session (which never get a seq) gain
// a bogus `"seq": 0` once merged. Fix: only copy seq when ev->body() contains one.
TEST_CASE("bus: merging deltas without a session does not invent a seq", "[bus][pressure][coalesce]") {
  Staller stalled;
  Bus bus;
  ScopeExit release([&] { stalled.gate.open(); });
  bus.subscribe("", stalled.handler(), 1);
  bus.publish("log", json::object{{"type", "log"}});
  REQUIRE(stalled.entered.wait());
  json::object d{{"type", "item.delta"}, {"item_id", "x"}, {"delta", "a"}};
  bus.publish("d", d, true);
  d["delta"] = "b";
  bus.publish("d", d, true);  // full: merged into the first
  stalled.gate.open();
  bus.drain();
  auto seen = stalled.rec.seen();
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].str("delta") == "ab");
  CHECK_FALSE(seen[1].has_seq());
}
