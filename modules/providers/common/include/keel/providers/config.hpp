// Provider configuration, Codex-compatible where it makes sense.
//
// A provider module's configuration (the JSON the kernel passes to start()) is
//   {"provider": {...the [model_providers.NAME] entry...}, "model": "gpt-5"}
// and a `stream` request may carry its own "provider" object that replaces it for that call.
// Keys read from the provider entry (all optional):
//   name                      display name used in messages ("OpenAI")
//   id                        the model_providers key ("openai"), used in messages if present
//   base_url                  e.g. "https://api.openai.com/v1" (each module has a default)
//   wire_api                  "responses" | "chat" | "anthropic" (informational here)
//   env_key                   environment variable holding the API key; when set and the
//                             variable is unset or empty, requests fail with `unauthorized`
//                             naming it
//   env_key_instructions      appended to that message (how to get a key)
//   experimental_bearer_token a literal key (Codex's name), used when env_key is not set
//   http_headers              {"Header": "value"} sent with every request
//   env_http_headers          {"Header": "ENV_VAR"}: value taken from the environment (skipped when unset)
//   query_params              {"name": "value"} appended to every URL
//   request_max_retries       default 4  (HTTP 5xx/429/connection failures)
//   stream_max_retries        default 5  (stream cut, idle, invalid event)
//   stream_idle_timeout_ms    default 300000
//   connect_timeout_ms        default 15000
//   retry_base_delay_ms       default 200   (backoff: base * 2^(n-1), ±10% jitter)
//   retry_max_delay_ms        default 20000 (cap of the computed backoff)
//   max_retry_after_ms        default 120000 (a server asking to wait longer fails the request
//                             with rate_limited/server_error and its retry_after_ms)
//   max_tokens                Anthropic only, default 8192
//   anthropic_version         Anthropic only, default "2023-06-01"
#pragma once

#include <keel/common/http_client.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace keel::providers {

struct ProviderConfig {
  std::string id;
  std::string name;
  std::string base_url;
  std::string wire_api;
  std::string env_key;
  std::string env_key_instructions;
  std::string bearer_token;
  common::HttpHeaders http_headers;
  common::HttpHeaders env_http_headers;  // header name, environment variable
  common::HttpHeaders query_params;
  int request_max_retries = 4;
  int stream_max_retries = 5;
  std::int64_t stream_idle_timeout_ms = 300000;
  std::int64_t connect_timeout_ms = 15000;
  std::int64_t retry_base_delay_ms = 200;
  std::int64_t retry_max_delay_ms = 20000;
  std::int64_t max_retry_after_ms = 120000;
  std::int64_t max_tokens = 8192;
  std::string anthropic_version = "2023-06-01";
  std::string model;  // the module config's "model" (a request's "model" wins)

  // "OpenAI" / "openai" / the base URL's host: how messages name this provider.
  std::string label() const;
};

struct ProviderDefaults {
  std::string name;
  std::string base_url;
  std::string wire_api;
};

// Thrown for a configuration value of the wrong type or range; the message names the key.
struct ConfigError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Reads a provider entry (the object itself, not the module config).
ProviderConfig parse_provider_entry(const boost::json::object& entry, const ProviderDefaults& defaults);

// Reads a module config {"provider": {...}, "model": "..."}. A config without "provider"
// is read as the entry itself (so a flat object works too).
ProviderConfig parse_module_config(const boost::json::object& config, const ProviderDefaults& defaults);

struct ApiKey {
  std::string value;   // never printed
  std::string source;  // "the environment variable OPENAI_API_KEY (env_key of model provider 'openai')"
};

// Resolves the key. Throws ProviderError{unauthorized} naming env_key when it is set but the
// variable is unset or empty. An empty value means "send no key".
ApiKey resolve_api_key(const ProviderConfig& config);

// http_headers plus the env_http_headers whose variables are set.
common::HttpHeaders configured_headers(const ProviderConfig& config);

// base_url + path, without doubling or dropping the slash between them.
std::string join_url(std::string_view base, std::string_view path);

}  // namespace keel::providers
