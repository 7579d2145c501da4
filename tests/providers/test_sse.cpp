// The incremental SSE parser: every chunking of a stream gives the same events.
#include <keel/common/sse.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using keel::common::SseEvent;
using keel::common::SseParser;

namespace {

std::vector<SseEvent> parse_chunks(const std::vector<std::string>& chunks, bool* pending_at_end = nullptr) {
  std::vector<SseEvent> out;
  SseParser p([&](const SseEvent& e) { out.push_back(e); });
  for (const auto& c : chunks) p.feed(c);
  bool pending = p.finish();
  if (pending_at_end) *pending_at_end = pending;
  return out;
}

std::vector<SseEvent> parse(const std::string& s) { return parse_chunks({s}); }

bool same(const std::vector<SseEvent>& a, const std::vector<SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].event != b[i].event || a[i].data != b[i].data || a[i].id != b[i].id) return false;
  return true;
}

const std::string kMixed =
    "\xEF\xBB\xBF"
    ": a comment\n"
    "event: response.created\r\n"
    "data: {\"a\":1}\r\n"
    "\r\n"
    "id: 7\r"
    "data: line one\r"
    "data:line two\r"
    "data:  indented\r"
    "\r"
    "event: ping\n"
    "\n"  // no data: not dispatched
    "data\n"
    "\n"  // a data field with no colon: empty data line
    "retry: 1500\n"
    "data: \xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80\n"
    "unknown: field\n"
    "\n"
    "data: [DONE]\n\n";

}  // namespace

TEST_CASE("sse: fields, multi-line data, comments, id, retry") {
  SseParser* self = nullptr;
  std::vector<SseEvent> events;
  SseParser p([&](const SseEvent& e) { events.push_back(e); });
  self = &p;
  p.feed(kMixed);
  CHECK_FALSE(p.finish());
  REQUIRE(events.size() == 5);
  CHECK(events[0].event == "response.created");
  CHECK(events[0].data == "{\"a\":1}");
  CHECK(events[0].id.empty());
  CHECK(events[1].event.empty());
  CHECK(events[1].data == "line one\nline two\n indented");
  CHECK(events[1].id == "7");
  CHECK(events[2].data.empty());
  CHECK(events[2].event.empty());  // the ping type was reset by the empty dispatch
  CHECK(events[3].data == "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80");
  CHECK(events[3].id == "7");  // the last event id persists
  CHECK(events[4].data == "[DONE]");
  REQUIRE(self->retry_ms());
  CHECK(*self->retry_ms() == 1500);
}

TEST_CASE("sse: a chunk boundary at every byte position gives the same events") {
  const auto whole = parse(kMixed);
  REQUIRE(whole.size() == 5);
  for (std::size_t i = 0; i <= kMixed.size(); ++i) {
    INFO("split at " << i);
    CHECK(same(parse_chunks({kMixed.substr(0, i), kMixed.substr(i)}), whole));
  }
  // Three pieces, every pair of positions (the stream is short enough).
  for (std::size_t i = 0; i <= kMixed.size(); i += 3)
    for (std::size_t j = i; j <= kMixed.size(); j += 5) {
      INFO("split at " << i << " and " << j);
      CHECK(same(parse_chunks({kMixed.substr(0, i), kMixed.substr(i, j - i), kMixed.substr(j)}), whole));
    }
}

TEST_CASE("sse: byte at a time, CRLF split between chunks") {
  std::vector<std::string> bytes;
  for (char c : kMixed) bytes.emplace_back(1, c);
  CHECK(same(parse_chunks(bytes), parse(kMixed)));

  // "\r" ending one chunk and "\n" starting the next are one line ending, not two.
  auto events = parse_chunks({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
  REQUIRE(events.size() == 1);
  CHECK(events[0].data == "a\nb");
}

TEST_CASE("sse: line endings LF, CRLF and CR are equivalent") {
  std::string lf = "event: x\ndata: 1\ndata: 2\n\n";
  std::string crlf = "event: x\r\ndata: 1\r\ndata: 2\r\n\r\n";
  std::string cr = "event: x\rdata: 1\rdata: 2\r\r";
  auto a = parse(lf), b = parse(crlf), c = parse(cr);
  REQUIRE(a.size() == 1);
  CHECK(a[0].data == "1\n2");
  CHECK(same(a, b));
  CHECK(same(a, c));
}

TEST_CASE("sse: an event cut mid-way is discarded and reported") {
  bool pending = false;
  auto events = parse_chunks({"data: {\"whole\":1}\n\n", "event: x\ndata: {\"half"}, &pending);
  REQUIRE(events.size() == 1);
  CHECK(pending);

  pending = true;
  events = parse_chunks({"data: 1\n\n"}, &pending);
  CHECK_FALSE(pending);

  // Lenient end of stream: whole data lines without the closing blank line are dispatched.
  std::vector<SseEvent> got;
  SseParser p([&](const SseEvent& e) { got.push_back(e); });
  p.feed("data: [DONE]\n");
  CHECK_FALSE(p.finish(true));
  REQUIRE(got.size() == 1);
  CHECK(got[0].data == "[DONE]");
  // ...but never a partial line.
  got.clear();
  p.reset();
  p.feed("data: [DO");
  CHECK(p.finish(true));
  CHECK(got.empty());
}

TEST_CASE("sse: holds only the current event, and refuses a huge one") {
  std::size_t seen = 0;
  SseParser p([&](const SseEvent&) { ++seen; }, 1024);
  for (int i = 0; i < 1000; ++i) p.feed("data: " + std::string(500, 'x') + "\n\n");
  CHECK(seen == 1000);
  CHECK_FALSE(p.pending());
  CHECK_THROWS_AS(p.feed("data: " + std::string(2000, 'y')), keel::common::SseError);
  p.reset();
  CHECK_THROWS_AS(p.feed(std::string("data: ") + std::string(600, 'a') + "\ndata: " + std::string(600, 'b') + "\n"),
                  keel::common::SseError);
}

TEST_CASE("sse: a partial BOM that is not one is content") {
  auto events = parse_chunks({"\xEF", "data: x\n\n"});
  CHECK(events.empty());  // "\xEFdata" is an unknown field
  events = parse_chunks({"\xEF\xBB", "\xBF", "data: y\n\n"});
  REQUIRE(events.size() == 1);
  CHECK(events[0].data == "y");
}
