// Which module serves a model provider: built-in entries (openai, anthropic, ollama,
// lmstudio, replay) merged with [model_providers.<id>], and wire_api (or `module`) naming
// the provider module.
#pragma once

#include <keel/kernel/config.hpp>

#include <boost/json/object.hpp>

#include <string>

namespace keel {

struct ProviderChoice {
  std::string id;      // "openai", "ollama", "replay", ...
  std::string module;  // provider capability name: "openai-responses", "openai-chat", "anthropic", "replay"
  boost::json::object entry;  // the merged [model_providers.<id>] table
};

// Throws ConfigError for an unknown provider or wire_api.
ProviderChoice resolve_provider(const Config& config, const std::string& id);

}  // namespace keel
