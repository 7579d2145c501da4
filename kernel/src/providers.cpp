// Which module serves a session's model: built-in provider entries, overridden and extended
// by [model_providers.<id>] tables (Codex's configuration shape).
#include "kernel_impl.hpp"

namespace keel {
namespace json = boost::json;

namespace {

json::object builtin_entry(const std::string& id) {
  if (id == "openai")
    return {{"name", "OpenAI"}, {"base_url", "https://api.openai.com/v1"}, {"env_key", "OPENAI_API_KEY"},
            {"wire_api", "responses"}};
  if (id == "anthropic")
    return {{"name", "Anthropic"}, {"base_url", "https://api.anthropic.com"}, {"env_key", "ANTHROPIC_API_KEY"},
            {"wire_api", "anthropic"}};
  if (id == "ollama") return {{"name", "Ollama"}, {"base_url", "http://localhost:11434/v1"}, {"wire_api", "chat"}};
  if (id == "lmstudio") return {{"name", "LM Studio"}, {"base_url", "http://localhost:1234/v1"}, {"wire_api", "chat"}};
  if (id == "replay") return {{"name", "Replay"}, {"wire_api", "replay"}, {"default_model", "replay"}};
  return {};
}

std::string module_for_wire(const std::string& wire) {
  if (wire == "responses") return "openai-responses";
  if (wire == "chat") return "openai-chat";
  if (wire == "anthropic") return "anthropic";
  if (wire == "replay") return "replay";
  return {};
}

}  // namespace

ProviderChoice resolve_provider(const Config& config, const std::string& id) {
  ProviderChoice c;
  c.id = id;
  c.entry = builtin_entry(id);
  if (auto* t = config.find("model_providers." + id); t && t->is_object()) merge_json(c.entry, t->as_object());
  if (c.entry.empty())
    throw ConfigError("unknown model provider '" + id + "': define [model_providers." + id +
                      "] or use one of openai, anthropic, ollama, lmstudio, replay");
  auto* module = c.entry.if_contains("module");  // a third-party provider module, named directly
  if (module && module->is_string()) {
    c.module = std::string(module->as_string());
  } else {
    auto* wire = c.entry.if_contains("wire_api");
    std::string w = wire && wire->is_string() ? std::string(wire->as_string()) : "responses";
    c.module = module_for_wire(w);
    if (c.module.empty())
      throw ConfigError("model provider '" + id + "' has wire_api = \"" + w +
                        "\"; expected responses, chat, anthropic or replay");
  }
  c.entry["id"] = id;
  return c;
}

}  // namespace keel
