// Incremental Server-Sent Events parser (the WHATWG "event stream" format).
//
//   keel::common::SseParser parser([](const keel::common::SseEvent& ev) { ... });
//   parser.feed(bytes);      // any chunking: an event may straddle any number of feeds
//   parser.finish();         // end of stream; an unterminated event is discarded
//
// Lines end in "\n", "\r\n" or "\r" (a CR at the end of one chunk and an LF at the start of
// the next are one line ending). Fields: `event`, `data` (repeated lines are joined with
// "\n"), `id`, `retry` (digits only); lines starting with ':' are comments; unknown fields
// are ignored; a blank line dispatches the event (nothing is dispatched when no data line was
// seen). A leading UTF-8 BOM is skipped. The parser holds at most the current partial line and
// the current event — never the stream — and refuses an event larger than max_event_bytes.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace keel::common {

struct SseEvent {
  std::string event;  // the `event:` field; empty when the event had none (spec: "message")
  std::string data;   // data lines joined with "\n"
  std::string id;     // the last event id seen so far in the stream
};

// Thrown by feed() when one event (or one line) exceeds max_event_bytes.
struct SseError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SseParser {
 public:
  using Handler = std::function<void(const SseEvent&)>;

  explicit SseParser(Handler on_event, std::size_t max_event_bytes = 64u << 20);

  // Parse the next bytes. The handler runs for every event completed by them, in order.
  // Exceptions thrown by the handler propagate; the parser is then in an unspecified state
  // (call reset() before reusing it).
  void feed(std::string_view bytes);

  // End of stream. Returns true when an unterminated line or event was pending (the stream
  // was cut mid-event); that partial event is discarded, as the spec says. With
  // dispatch_whole_lines, an event whose data lines all ended but which lacks the closing
  // blank line is dispatched instead (lenient servers end "data: [DONE]\n" and close); a
  // partial line is always discarded.
  bool finish(bool dispatch_whole_lines = false);

  // True when a partial line or an undispatched event is buffered.
  bool pending() const { return !line_.empty() || !data_.empty() || !event_.empty(); }

  // The last `retry:` value seen, in milliseconds.
  std::optional<long long> retry_ms() const { return retry_ms_; }
  const std::string& last_event_id() const { return last_id_; }

  // Forget everything (a new stream).
  void reset();

 private:
  void feed_lines(std::string_view bytes);
  void process_line(std::string_view line);
  void dispatch();

  Handler on_event_;
  std::size_t max_event_bytes_;
  std::string line_;   // a line not yet terminated, carried across feeds
  std::string data_;   // current event's data, each line followed by '\n'
  std::string event_;  // current event's type
  std::string last_id_;
  std::optional<long long> retry_ms_;
  SseEvent out_;       // reused for dispatch
  bool skip_lf_ = false;      // the previous feed ended with '\r'
  bool started_ = false;      // the BOM check is done
  unsigned bom_seen_ = 0;     // BOM bytes matched so far
};

}  // namespace keel::common
