#include <keel/providers/json.hpp>
#include <keel/providers/retry.hpp>
#include <keel/providers/stream.hpp>

#include <keel/abi.h>

#include <boost/json/serialize.hpp>

#include <atomic>
#include <random>

namespace keel::providers {

std::string Reply::json() const { return boost::json::serialize(payload); }

Reply error_reply(const ProviderError& e) { return Reply{status_for_code(e.code), error_payload(e)}; }

Reply guarded(const std::function<Reply()>& body) {
  try {
    return body();
  } catch (const ProviderError& e) {
    return error_reply(e);
  } catch (const ConfigError& e) {
    return error_reply(ProviderError("bad_request", std::string("invalid provider configuration: ") + e.what()));
  } catch (const common::HttpError& e) {
    return error_reply(ProviderError(e.kind() == common::HttpError::Kind::cancelled ? "cancelled" : "bad_request",
                                     e.what()));
  } catch (const std::exception& e) {
    ProviderError pe("internal", e.what());
    return Reply{KEEL_ERR_INTERNAL, error_payload(pe)};
  }
}

boost::json::object make_usage(std::int64_t input, std::int64_t cached, std::int64_t output, std::int64_t reasoning,
                               std::int64_t total) {
  boost::json::object u;
  u["input_tokens"] = input;
  u["cached_input_tokens"] = cached;
  u["output_tokens"] = output;
  u["reasoning_output_tokens"] = reasoning;
  u["total_tokens"] = total >= 0 ? total : input + output;
  return u;
}

boost::json::object parse_event_json(const common::SseEvent& event) {
  std::string why;
  auto v = json::try_parse(event.data, &why);
  if (!v || !v->is_object()) {
    std::string name = event.event.empty() ? std::string("an event") : "event '" + event.event + "'";
    throw ProviderError("stream_error",
                        "invalid JSON in " + name + " of the stream (" + (v ? "not an object" : why) +
                            "): " + json::snippet(event.data, 200),
                        RetryKind::stream, "invalid event");
  }
  return std::move(v->get_object());
}

std::string random_id(std::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(prefix);
  out.push_back('_');
  auto r = rng();
  for (int i = 0; i < 12; ++i, r >>= 4) out.push_back(hex[r & 15]);
  return out;
}

namespace {

ProviderError from_http_error(const common::HttpError& e) {
  using K = common::HttpError::Kind;
  using P = common::HttpError::Phase;
  switch (e.kind()) {
    case K::cancelled:
      return ProviderError("cancelled", "the request was cancelled");
    case K::invalid_url:
      return ProviderError("bad_request", e.what());
    case K::too_large:
      return ProviderError("stream_error", e.what());
    case K::timeout:
      if (e.phase() == P::body) return ProviderError("stream_error", e.what(), RetryKind::stream, "stream idle timeout");
      return ProviderError("server_error", e.what(), RetryKind::request, "timeout");
    case K::connect:
      return ProviderError("server_error", e.what(), RetryKind::request, "connection failed");
    case K::io:
      if (e.phase() == P::body) return ProviderError("stream_error", e.what(), RetryKind::stream, "stream cut");
      return ProviderError("server_error", e.what(), RetryKind::request, "connection failed");
  }
  return ProviderError("server_error", e.what(), RetryKind::request, "connection failed");
}

Reply attempt(const ProviderConfig& config, const StreamSpec& spec, const EmitFn& emit, const CancelFn& cancelled,
              const ApiKey& key) {
  common::HttpRequest req;
  req.url = spec.url;
  req.headers = spec.headers;
  req.query = config.query_params;
  req.body = spec.body;
  req.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  req.idle_timeout = std::chrono::milliseconds(config.stream_idle_timeout_ms);
  req.cancelled = cancelled;

  std::unique_ptr<StreamDecoder> decoder = spec.make_decoder(emit);
  common::SseParser parser([&](const common::SseEvent& ev) {
    if (!decoder->done()) decoder->on_event(ev);
  });
  common::HttpResponse response;
  try {
    response = common::http_stream(req, [&](std::string_view chunk) {
      parser.feed(chunk);
      return !decoder->done();
    });
  } catch (const common::HttpError& e) {
    throw from_http_error(e);
  } catch (const common::SseError& e) {
    throw ProviderError("stream_error", e.what());
  }
  if (!response.ok()) {
    std::string url = spec.url;
    throw classify_http_error(response, config, key, url);
  }
  if (!decoder->done()) {
    bool cut = parser.finish(/*dispatch_whole_lines=*/true);
    if (!decoder->done() && !decoder->complete_at_eof()) {
      throw ProviderError("stream_error",
                          "the stream from " + config.label() + " ended before the response was complete" +
                              (cut ? " (cut in the middle of an event)" : ""),
                          RetryKind::stream, "stream cut");
    }
  }
  return Reply{KEEL_OK, decoder->result()};
}

}  // namespace

Reply run_stream(const ProviderConfig& config, const StreamSpec& spec, const EmitFn& emit, const CancelFn& cancelled,
                 const ApiKey& key) {
  int request_retries = 0, stream_retries = 0;
  for (;;) {
    if (cancelled && cancelled()) return error_reply(ProviderError("cancelled", "the request was cancelled"));
    try {
      return attempt(config, spec, emit, cancelled, key);
    } catch (const ProviderError& e) {
      if (e.retry == RetryKind::none) return error_reply(e);
      const bool stream = e.retry == RetryKind::stream;
      int& used = stream ? stream_retries : request_retries;
      const int max = stream ? config.stream_max_retries : config.request_max_retries;
      std::int64_t delay = e.retry_after_ms ? *e.retry_after_ms
                                            : backoff_delay_ms(used + 1, config.retry_base_delay_ms,
                                                               config.retry_max_delay_ms);
      if (used >= max || (e.retry_after_ms && *e.retry_after_ms > config.max_retry_after_ms)) {
        ProviderError last = e;
        std::string note = used >= max ? " (gave up after " + std::to_string(used) + (used == 1 ? " retry)" : " retries)")
                                       : " (the server asked to wait " + std::to_string(delay) +
                                             " ms, longer than max_retry_after_ms)";
        last = ProviderError(e.code, std::string(e.what()) + note, RetryKind::none, e.reason);
        last.http_status = e.http_status;
        last.retry_after_ms = e.retry_after_ms;
        if (last.code == "rate_limited" && !last.retry_after_ms) last.retry_after_ms = delay;
        return error_reply(last);
      }
      ++used;
      boost::json::object ev;
      ev["type"] = "retry";
      ev["attempt"] = used;
      ev["max_attempts"] = max;
      ev["delay_ms"] = delay;
      ev["reason"] = e.reason.empty() ? e.code : e.reason;
      ev["message"] = e.what();
      emit(ev);
      if (!sleep_unless_cancelled(delay, cancelled))
        return error_reply(ProviderError("cancelled", "the request was cancelled"));
    }
  }
}

}  // namespace keel::providers
