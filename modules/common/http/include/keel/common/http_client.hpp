// A small streaming HTTP(S) client on Poco, for talking to model servers.
//
//   HttpRequest req;
//   req.url = "https://api.openai.com/v1/responses";
//   req.headers = {{"Authorization", "Bearer ..."}};
//   req.body = json;
//   req.cancelled = [&] { return call.cancelled(); };
//   HttpResponse r = http_stream(req, [&](std::string_view chunk) { parser.feed(chunk); return true; });
//
// - http or https by the URL's scheme (system CA store; SSL_CERT_FILE overrides it);
//   HTTP(S)_PROXY / NO_PROXY from the environment are honoured (never for loopback).
// - The 2xx body is handed to on_chunk piece by piece as it arrives; nothing is buffered.
//   on_chunk returns false to stop early (the connection is closed). Exceptions thrown by
//   on_chunk propagate unchanged after the connection is closed.
// - A non-2xx response is returned with its body (up to max_error_body bytes) and on_chunk
//   is not called.
// - idle_timeout bounds every wait for bytes (the response headers and each body read); it
//   ends in HttpError{Kind::timeout}.
// - cancelled() is polled by a watcher every ~20 ms while the request is in flight; when it
//   turns true the socket is shut down at once, which wakes the blocked read, and the call
//   ends in HttpError{Kind::cancelled}.
// - Transport failures (DNS, connect, reset, TLS) end in HttpError with the phase they hit.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::common {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  HttpHeaders headers;
  HttpHeaders query;  // appended to the URL's query, percent-encoded
  std::string body;
  std::string content_type = "application/json";
  std::chrono::milliseconds connect_timeout{15000};
  std::chrono::milliseconds idle_timeout{300000};
  std::function<bool()> cancelled;  // may be empty; must be callable from another thread
  std::size_t max_error_body = 1u << 20;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  HttpHeaders headers;
  std::string body;  // non-2xx bodies (http_stream) or the whole body (http_fetch)

  bool ok() const { return status >= 200 && status < 300; }
  // Case-insensitive header lookup.
  std::optional<std::string> header(std::string_view name) const;
};

class HttpError : public std::runtime_error {
 public:
  enum class Kind { invalid_url, connect, timeout, io, cancelled, too_large };
  enum class Phase { connect, send, headers, body };
  HttpError(Kind kind, Phase phase, const std::string& message)
      : std::runtime_error(message), kind_(kind), phase_(phase) {}
  Kind kind() const { return kind_; }
  Phase phase() const { return phase_; }

 private:
  Kind kind_;
  Phase phase_;
};

using ChunkFn = std::function<bool(std::string_view chunk)>;

// Sends the request and streams a 2xx body into on_chunk.
HttpResponse http_stream(const HttpRequest& request, const ChunkFn& on_chunk);

// Sends the request and returns the whole body (at most max_body bytes) whatever the status.
HttpResponse http_fetch(const HttpRequest& request, std::size_t max_body = 16u << 20);

// base + query parameters, percent-encoded. Throws HttpError{invalid_url}.
std::string build_url(std::string_view url, const HttpHeaders& query);

}  // namespace keel::common
