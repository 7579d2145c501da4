#include <keel/providers/config.hpp>
#include <keel/providers/errors.hpp>
#include <keel/providers/json.hpp>
#include <keel/providers/retry.hpp>

#include <keel/abi.h>

#include <algorithm>
#include <cctype>

namespace keel::providers {

namespace {

bool icontains(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

}  // namespace

int status_for_code(std::string_view code) {
  if (code == "context_window_exceeded" || code == "bad_request") return KEEL_ERR_INVALID_ARGUMENT;
  if (code == "unauthorized" || code == "quota_exceeded") return KEEL_ERR_DENIED;
  if (code == "rate_limited" || code == "server_error" || code == "stream_error") return KEEL_ERR_UNAVAILABLE;
  if (code == "cancelled") return KEEL_ERR_CANCELLED;
  if (code == "timeout") return KEEL_ERR_TIMEOUT;
  return KEEL_ERR_INTERNAL;
}

boost::json::object error_payload(const ProviderError& e) {
  boost::json::object err;
  err["message"] = e.what();
  err["code"] = e.code;
  if (e.http_status) err["http_status"] = e.http_status;
  if (e.retry_after_ms) err["retry_after_ms"] = *e.retry_after_ms;
  boost::json::object out;
  out["error"] = std::move(err);
  return out;
}

bool looks_like_context_window_error(std::string_view code, std::string_view type, std::string_view message) {
  if (code == "context_length_exceeded" || code == "context_window_exceeded" || type == "exceed_context_size_error" ||
      code == "exceed_context_size_error")
    return true;
  for (std::string_view m : {"context length", "context_length", "context window", "maximum context",
                             "prompt is too long", "exceeds the available context", "context size has been exceeded",
                             "input is too long", "too many input tokens"})
    if (icontains(message, m)) return true;
  return false;
}

bool looks_like_quota_error(std::string_view code, std::string_view type, std::string_view message) {
  if (code == "insufficient_quota" || type == "insufficient_quota" || code == "billing_hard_limit_reached")
    return true;
  return icontains(message, "exceeded your current quota") || icontains(message, "credit balance is too low");
}

ProviderError classify_api_error(std::string_view code, std::string_view type, std::string_view message,
                                 const std::string& prefix, std::string fallback_code, RetryKind fallback_retry) {
  std::string text = prefix + (message.empty() ? std::string(code.empty() ? type : code) : std::string(message));
  if (looks_like_context_window_error(code, type, message))
    return ProviderError("context_window_exceeded", text);
  if (looks_like_quota_error(code, type, message))
    return ProviderError("quota_exceeded", text);
  if (code == "rate_limit_exceeded" || type == "rate_limit_error" || type == "rate_limit_exceeded" ||
      code == "rate_limit_error") {
    ProviderError e("rate_limited", text, RetryKind::request, "rate limited");
    e.retry_after_ms = retry_after_from_message(message);
    return e;
  }
  if (code == "invalid_api_key" || type == "authentication_error" || type == "permission_error")
    return ProviderError("unauthorized", text);
  if (type == "invalid_request_error" || code == "invalid_request_error")
    return ProviderError("bad_request", text);
  ProviderError e(std::move(fallback_code), text, fallback_retry,
                  std::string(code.empty() ? (type.empty() ? "server error" : type) : code));
  if (fallback_retry != RetryKind::none) e.retry_after_ms = retry_after_from_message(message);
  return e;
}

ApiErrorInfo parse_error_body(std::string_view body) {
  ApiErrorInfo info;
  if (auto v = json::try_parse(body); v && v->is_object()) {
    const auto& o = v->get_object();
    const boost::json::object* err = json::obj(o, "error");
    if (err) {
      info.message = json::str(*err, "message");
      info.type = json::str(*err, "type");
      if (auto* c = err->if_contains("code")) {
        if (c->is_string()) info.code = std::string(c->get_string());
        else if (c->is_int64()) info.code = std::to_string(c->get_int64());
      }
    } else if (auto s = json::str(o, "error"); !s.empty()) {
      info.message = s;
    } else if (auto m = json::str(o, "message"); !m.empty()) {
      info.message = m;
      info.type = json::str(o, "type");
    } else if (auto d = json::str(o, "detail"); !d.empty()) {
      info.message = d;
    }
    if (!info.message.empty() || !info.type.empty()) return info;
  }
  std::string_view t = body;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  info.message = json::snippet(t, 500);
  return info;
}

ProviderError classify_http_error(const common::HttpResponse& r, const ProviderConfig& config, const ApiKey& key,
                                  std::string_view url) {
  ApiErrorInfo info = parse_error_body(r.body);
  std::string detail = info.message.empty() ? r.reason : info.message;
  std::string prefix = config.label() + " returned HTTP " + std::to_string(r.status) + ": ";
  std::string text = prefix + detail;
  auto finish = [&](ProviderError e) {
    e.http_status = r.status;
    return e;
  };

  if (r.status == 401 || r.status == 403) {
    std::string msg = text;
    if (!key.source.empty())
      msg += ". The API key sent came from " + key.source + ".";
    else
      msg += ". No API key was sent: model provider '" + (config.id.empty() ? config.label() : config.id) +
             "' has no env_key; set env_key to the environment variable that holds the key.";
    return finish(ProviderError("unauthorized", msg));
  }
  if (r.status != 429 && looks_like_context_window_error(info.code, info.type, info.message))
    return finish(ProviderError("context_window_exceeded", text));
  if (looks_like_quota_error(info.code, info.type, info.message) || r.status == 402)
    return finish(ProviderError("quota_exceeded", text));
  if (r.status == 429) {
    ProviderError e("rate_limited", text, RetryKind::request, "rate limited (HTTP 429)");
    e.retry_after_ms = retry_after_from_headers(r);
    if (!e.retry_after_ms) e.retry_after_ms = retry_after_from_message(info.message);
    return finish(std::move(e));
  }
  if (r.status >= 500 || r.status == 408 || r.status == 409) {
    ProviderError e("server_error", text, RetryKind::request, "HTTP " + std::to_string(r.status));
    e.retry_after_ms = retry_after_from_headers(r);
    if (!e.retry_after_ms) e.retry_after_ms = retry_after_from_message(info.message);
    return finish(std::move(e));
  }
  if (r.status == 404)
    return finish(ProviderError("bad_request", text + " (requested " + std::string(url) +
                                                   "; check base_url and the model name)"));
  return finish(ProviderError("bad_request", text));
}

}  // namespace keel::providers
