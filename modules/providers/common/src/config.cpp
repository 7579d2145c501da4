#include <keel/providers/config.hpp>
#include <keel/providers/errors.hpp>
#include <keel/providers/json.hpp>

#include <cstdlib>

namespace keel::providers {

namespace {

std::string where(const ProviderConfig& c, std::string_view key) {
  std::string p = c.id.empty() ? "provider" : "model_providers." + c.id;
  return p + "." + std::string(key);
}

void read_string(const boost::json::object& e, std::string_view key, std::string& out, const ProviderConfig& c) {
  auto* v = e.if_contains(key);
  if (!v || v->is_null()) return;
  if (!v->is_string()) throw ConfigError(where(c, key) + " must be a string");
  out = std::string(v->get_string());
}

template <class Int>
void read_int(const boost::json::object& e, std::string_view key, Int& out, std::int64_t min, std::int64_t max,
              const ProviderConfig& c) {
  auto* v = e.if_contains(key);
  if (!v || v->is_null()) return;
  std::int64_t n = 0;
  if (v->is_int64()) n = v->get_int64();
  else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(max)) n = static_cast<std::int64_t>(v->get_uint64());
  else if (v->is_double() && v->get_double() == static_cast<double>(static_cast<std::int64_t>(v->get_double())))
    n = static_cast<std::int64_t>(v->get_double());
  else throw ConfigError(where(c, key) + " must be an integer");
  if (n < min || n > max)
    throw ConfigError(where(c, key) + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                      " (got " + std::to_string(n) + ")");
  out = static_cast<Int>(n);
}

void read_map(const boost::json::object& e, std::string_view key, common::HttpHeaders& out, const ProviderConfig& c) {
  auto* v = e.if_contains(key);
  if (!v || v->is_null()) return;
  if (!v->is_object()) throw ConfigError(where(c, key) + " must be a table of strings");
  out.clear();
  for (const auto& [k, val] : v->get_object()) {
    std::string s;
    if (val.is_string()) s = std::string(val.get_string());
    else if (val.is_int64()) s = std::to_string(val.get_int64());
    else if (val.is_uint64()) s = std::to_string(val.get_uint64());
    else if (val.is_bool()) s = val.get_bool() ? "true" : "false";
    else throw ConfigError(where(c, key) + "." + std::string(k) + " must be a string");
    out.emplace_back(std::string(k), std::move(s));
  }
}

std::string host_of(std::string_view url) {
  auto p = url.find("://");
  if (p == std::string_view::npos) return std::string(url);
  url.remove_prefix(p + 3);
  auto end = url.find_first_of("/?#");
  return std::string(url.substr(0, end));
}

}  // namespace

std::string ProviderConfig::label() const {
  if (!name.empty()) return name;
  if (!id.empty()) return id;
  return host_of(base_url);
}

ProviderConfig parse_provider_entry(const boost::json::object& e, const ProviderDefaults& d) {
  ProviderConfig c;
  c.name = d.name;
  c.base_url = d.base_url;
  c.wire_api = d.wire_api;
  read_string(e, "id", c.id, c);
  if (c.id.empty()) read_string(e, "key", c.id, c);
  read_string(e, "name", c.name, c);
  read_string(e, "base_url", c.base_url, c);
  read_string(e, "wire_api", c.wire_api, c);
  read_string(e, "env_key", c.env_key, c);
  read_string(e, "env_key_instructions", c.env_key_instructions, c);
  read_string(e, "experimental_bearer_token", c.bearer_token, c);
  read_map(e, "http_headers", c.http_headers, c);
  read_map(e, "env_http_headers", c.env_http_headers, c);
  read_map(e, "query_params", c.query_params, c);
  read_int(e, "request_max_retries", c.request_max_retries, 0, 100, c);
  read_int(e, "stream_max_retries", c.stream_max_retries, 0, 100, c);
  read_int(e, "stream_idle_timeout_ms", c.stream_idle_timeout_ms, 1, 24LL * 3600 * 1000, c);
  read_int(e, "connect_timeout_ms", c.connect_timeout_ms, 1, 3600LL * 1000, c);
  read_int(e, "retry_base_delay_ms", c.retry_base_delay_ms, 0, 3600LL * 1000, c);
  read_int(e, "retry_max_delay_ms", c.retry_max_delay_ms, 0, 3600LL * 1000, c);
  read_int(e, "max_retry_after_ms", c.max_retry_after_ms, 0, 24LL * 3600 * 1000, c);
  read_int(e, "max_tokens", c.max_tokens, 1, 10'000'000, c);
  read_string(e, "anthropic_version", c.anthropic_version, c);
  if (c.base_url.empty())
    throw ConfigError(where(c, "base_url") + " is required (e.g. \"http://localhost:11434/v1\")");
  while (c.base_url.size() > 1 && c.base_url.back() == '/') c.base_url.pop_back();
  return c;
}

ProviderConfig parse_module_config(const boost::json::object& config, const ProviderDefaults& defaults) {
  ProviderConfig c;
  if (auto* p = config.if_contains("provider")) {
    if (!p->is_object()) throw ConfigError("the module config's \"provider\" must be an object");
    c = parse_provider_entry(p->get_object(), defaults);
  } else {
    c = parse_provider_entry(config, defaults);
  }
  if (auto m = json::str(config, "model"); !m.empty()) c.model = std::string(m);
  return c;
}

ApiKey resolve_api_key(const ProviderConfig& c) {
  ApiKey key;
  std::string who = "model provider '" + (c.id.empty() ? c.label() : c.id) + "'";
  if (!c.env_key.empty()) {
    const char* v = std::getenv(c.env_key.c_str());
    if (!v || !*v) {
      std::string msg = who + " needs an API key in the environment variable " + c.env_key +
                        ", which is not set" + (v ? " (it is empty)" : "") + ".";
      if (!c.env_key_instructions.empty()) msg += " " + c.env_key_instructions;
      ProviderError e("unauthorized", msg);
      throw e;
    }
    key.value = v;
    key.source = "the environment variable " + c.env_key + " (env_key of " + who + ")";
  } else if (!c.bearer_token.empty()) {
    key.value = c.bearer_token;
    key.source = "experimental_bearer_token in the configuration of " + who;
  }
  return key;
}

common::HttpHeaders configured_headers(const ProviderConfig& c) {
  common::HttpHeaders h = c.http_headers;
  for (const auto& [name, var] : c.env_http_headers) {
    if (const char* v = std::getenv(var.c_str()); v && *v) h.emplace_back(name, v);
  }
  return h;
}

std::string join_url(std::string_view base, std::string_view path) {
  std::string out(base);
  while (!out.empty() && out.back() == '/') out.pop_back();
  if (!path.empty() && path.front() != '/') out.push_back('/');
  out.append(path);
  return out;
}

}  // namespace keel::providers
