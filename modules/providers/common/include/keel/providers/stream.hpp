// The stream driver every provider shares: POST, parse SSE as bytes arrive, hand each event
// to a wire-specific decoder, retry what can be retried, and produce exactly one reply.
//
// Retries (see docs/protocols.md, provider):
// - request failures (connection refused/reset before a response, timeouts waiting for the
//   response, HTTP 5xx/408/409/429) use request_max_retries;
// - stream failures (cut mid-event or before the terminal event, idle past
//   stream_idle_timeout_ms, invalid JSON in an event, an in-stream server error) use
//   stream_max_retries.
// Before each retry it emits {"type":"retry","attempt":n,"max_attempts":max,"delay_ms",
// "reason","message"}; `attempt` is the retry's number (1-based) in its budget. The delay is
// what the server asked for (Retry-After / retry-after-ms / "try again in Xs") or exponential
// backoff with jitter. A fresh decoder is made for every attempt, so the reply holds only the
// last, whole response; deltas of an abandoned attempt were already emitted and the retry
// event tells the listener to discard them.
#pragma once

#include <keel/common/http_client.hpp>
#include <keel/common/sse.hpp>
#include <keel/providers/config.hpp>
#include <keel/providers/errors.hpp>

#include <boost/json/object.hpp>

#include <functional>
#include <memory>
#include <string>

namespace keel::providers {

using EmitFn = std::function<void(const boost::json::object& event)>;
using CancelFn = std::function<bool()>;

// Turns one attempt's events into deltas (via emit) and a result. Throws ProviderError for
// in-stream errors (invalid JSON → stream_error, retryable).
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  virtual void on_event(const common::SseEvent& event) = 0;
  // The terminal event was seen; nothing after it is read.
  virtual bool done() const = 0;
  // At end of stream without the terminal event: is what arrived a whole response anyway?
  virtual bool complete_at_eof() const { return done(); }
  // {"items": [...], "usage": {...}, "response_id"?}
  virtual boost::json::object result() = 0;
};

struct StreamSpec {
  std::string url;
  common::HttpHeaders headers;  // auth + wire headers + configured headers
  std::string body;
  std::function<std::unique_ptr<StreamDecoder>(const EmitFn&)> make_decoder;
};

struct Reply {
  int status = 0;               // keel_status
  boost::json::object payload;  // the result, or {"error": {...}}
  bool ok() const { return status == 0; }
  std::string json() const;
};

Reply error_reply(const ProviderError& e);

// Runs `body`, turning ProviderError, ConfigError and other exceptions into error replies.
Reply guarded(const std::function<Reply()>& body);

Reply run_stream(const ProviderConfig& config, const StreamSpec& spec, const EmitFn& emit,
                 const CancelFn& cancelled, const ApiKey& key);

// {"input_tokens","cached_input_tokens","output_tokens","reasoning_output_tokens","total_tokens"}
boost::json::object make_usage(std::int64_t input, std::int64_t cached, std::int64_t output, std::int64_t reasoning,
                               std::int64_t total = -1);

// Parses an event's data as a JSON object or throws a retryable stream_error naming it.
boost::json::object parse_event_json(const common::SseEvent& event);

// A short random id ("msg_3f9a0c1d2e4b"), for wire formats that do not name their items.
std::string random_id(std::string_view prefix);

}  // namespace keel::providers
