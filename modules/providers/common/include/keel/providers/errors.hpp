// Provider errors: the protocol's error codes (docs/protocols.md), whether and how a failure
// is retried, and the mapping of HTTP error responses and in-stream error events onto them.
#pragma once

#include <keel/common/http_client.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace keel::providers {

struct ProviderConfig;
struct ApiKey;

// Which retry budget a failure draws on: request_max_retries (the request never got a
// stream: connection failures, 5xx, 429) or stream_max_retries (the stream broke: cut,
// idle, invalid event, in-stream server error).
enum class RetryKind { none, request, stream };

struct ProviderError : std::runtime_error {
  ProviderError(std::string code_, const std::string& message, RetryKind retry_ = RetryKind::none,
                std::string reason_ = {})
      : std::runtime_error(message), code(std::move(code_)), retry(retry_), reason(std::move(reason_)) {}

  std::string code;                           // context_window_exceeded, rate_limited, ...
  RetryKind retry = RetryKind::none;
  std::string reason;                         // short, for retry events: "HTTP 500", "stream cut"
  int http_status = 0;                        // when it came from an HTTP response
  std::optional<std::int64_t> retry_after_ms; // what the server asked for, if it did
};

// keel_status for an error code (see abi.h).
int status_for_code(std::string_view code);

// {"error": {"message", "code", "http_status"?, "retry_after_ms"?}}
boost::json::object error_payload(const ProviderError& e);

// The error described by an API's error object or message, independent of transport:
// `code`/`type` as the API names them (OpenAI `code`/`type`, Anthropic `error.type`).
// Recognises context-window, quota and rate-limit errors; anything else becomes
// `fallback_code` with `fallback_retry`.
ProviderError classify_api_error(std::string_view code, std::string_view type, std::string_view message,
                                 const std::string& prefix, std::string fallback_code, RetryKind fallback_retry);

// A non-2xx HTTP response → error. `url` is what was requested (for 404 hints).
ProviderError classify_http_error(const common::HttpResponse& response, const ProviderConfig& config,
                                  const ApiKey& key, std::string_view url);

// Pulls {message, code, type} out of an error body in any of the usual shapes:
// OpenAI {"error":{"message","type","code"}}, Anthropic {"type":"error","error":{"type","message"}},
// Ollama {"error":"text"}, or plain text.
struct ApiErrorInfo {
  std::string message, code, type;
};
ApiErrorInfo parse_error_body(std::string_view body);

bool looks_like_context_window_error(std::string_view code, std::string_view type, std::string_view message);
bool looks_like_quota_error(std::string_view code, std::string_view type, std::string_view message);

}  // namespace keel::providers
