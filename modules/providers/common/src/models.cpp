#include <keel/providers/json.hpp>
#include <keel/providers/models.hpp>

#include <keel/abi.h>

#include <boost/json/array.hpp>

#include <cctype>
#include <cstdint>
#include <string>

namespace keel::providers {

namespace {

struct Preset {
  std::string_view prefix;
  std::int64_t context_window;
  std::int64_t max_output_tokens;
  bool parallel_tool_calls;
  bool reasoning_effort;
  bool images;
};

// Public figures for well-known models; anything else is left to configuration.
constexpr Preset kPresets[] = {
    {"gpt-5", 272000, 128000, true, true, true},
    {"gpt-4.1", 1047576, 32768, true, false, true},
    {"gpt-4o", 128000, 16384, true, false, true},
    {"o3", 200000, 100000, true, true, true},
    {"o4-mini", 200000, 100000, true, true, true},
    {"codex-mini", 200000, 100000, true, true, true},
    {"claude-opus-4", 200000, 32000, true, true, true},
    {"claude-sonnet-4", 200000, 64000, true, true, true},
    {"claude-3-7-sonnet", 200000, 64000, true, true, true},
    {"claude-3-5-sonnet", 200000, 8192, true, false, true},
    {"claude-3-5-haiku", 200000, 8192, true, false, true},
    {"claude-haiku-4", 200000, 64000, true, true, true},
    {"qwen2.5-coder", 32768, 8192, false, false, false},
    {"qwen3-coder", 262144, 65536, true, false, false},
    {"gpt-oss", 131072, 131072, true, true, false},
};

// What a models listing says about a model beyond its id overrides the preset: the context
// length (vLLM `max_model_len`, OpenRouter `context_length`, others `context_window`) and,
// in OpenRouter's shape, `top_provider.max_completion_tokens`, `supported_parameters` and
// `architecture.input_modalities`.
void apply_listed_metadata(const boost::json::object& listed, boost::json::object& out) {
  bool listed_context = false;
  for (std::string_view k : {"context_length", "max_model_len", "context_window"})
    if (auto n = json::num(listed, k); n && *n > 0) out["context_window"] = *n, listed_context = true;
  for (std::string_view k : {"max_output_tokens", "max_completion_tokens"})
    if (auto n = json::num(listed, k); n && *n > 0) out["max_output_tokens"] = *n;
  if (const auto* top = json::obj(listed, "top_provider")) {
    if (!listed_context)
      if (auto n = json::num(*top, "context_length"); n && *n > 0) out["context_window"] = *n;
    if (auto n = json::num(*top, "max_completion_tokens"); n && *n > 0) out["max_output_tokens"] = *n;
  }
  if (const auto* params = json::arr(listed, "supported_parameters")) {
    bool tools = false, parallel = false, reasoning = false;
    for (const auto& p : *params) {
      if (!p.is_string()) continue;
      std::string_view name = p.get_string();
      tools = tools || name == "tools";
      parallel = parallel || name == "parallel_tool_calls";
      reasoning = reasoning || name == "reasoning" || name == "reasoning_effort";
    }
    out["supports_reasoning_effort"] = reasoning;
    if (!tools) out["supports_parallel_tool_calls"] = false;
    else if (parallel) out["supports_parallel_tool_calls"] = true;
  }
  if (const auto* arch = json::obj(listed, "architecture"))
    if (const auto* in = json::arr(*arch, "input_modalities")) {
      bool images = false;
      for (const auto& m : *in) images = images || (m.is_string() && m.get_string() == "image");
      out["supports_images"] = images;
    }
}

}  // namespace

std::optional<boost::json::object> model_preset(std::string_view id) {
  // Ollama-style "library/name:tag" and router-style "vendor/name" ids match on the name,
  // case-insensitively (Hugging Face ids as vLLM serves them: "Qwen/Qwen2.5-Coder-32B-Instruct").
  if (auto slash = id.rfind('/'); slash != std::string_view::npos) id.remove_prefix(slash + 1);
  std::string name(id);
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const Preset* best = nullptr;
  for (const auto& p : kPresets)
    if (std::string_view(name).substr(0, p.prefix.size()) == p.prefix && (!best || p.prefix.size() > best->prefix.size()))
      best = &p;
  if (!best) return std::nullopt;
  boost::json::object o;
  o["context_window"] = best->context_window;
  o["max_output_tokens"] = best->max_output_tokens;
  o["supports_parallel_tool_calls"] = best->parallel_tool_calls;
  o["supports_reasoning_effort"] = best->reasoning_effort;
  o["supports_images"] = best->images;
  return o;
}

Reply fetch_models(const ProviderConfig& config, const std::string& url, const common::HttpHeaders& headers,
                   const CancelFn& cancelled, const ApiKey& key) {
  common::HttpRequest req;
  req.method = "GET";
  req.url = url;
  req.headers = headers;
  req.query = config.query_params;
  req.connect_timeout = std::chrono::milliseconds(config.connect_timeout_ms);
  req.idle_timeout = std::chrono::milliseconds(std::min<std::int64_t>(config.stream_idle_timeout_ms, 60000));
  req.cancelled = cancelled;
  common::HttpResponse r;
  try {
    r = common::http_fetch(req);
  } catch (const common::HttpError& e) {
    if (e.kind() == common::HttpError::Kind::cancelled)
      return error_reply(ProviderError("cancelled", "the request was cancelled"));
    return error_reply(ProviderError("server_error", e.what()));
  }
  if (!r.ok()) return error_reply(classify_http_error(r, config, key, url));

  auto v = json::try_parse(r.body);
  const boost::json::array* list = nullptr;
  if (v && v->is_object()) {
    list = json::arr(v->get_object(), "data");
    if (!list) list = json::arr(v->get_object(), "models");
  }
  if (!list)
    return error_reply(ProviderError("server_error", config.label() + " returned an unexpected models list: " +
                                                         json::snippet(r.body, 200)));
  boost::json::array models;
  for (const auto& m : *list) {
    if (!m.is_object()) continue;
    const auto& mo = m.get_object();
    std::string_view id = json::str(mo, "id");
    if (id.empty()) id = json::str(mo, "name");  // Ollama's native /api/tags
    if (id.empty()) continue;
    boost::json::object out;
    out["id"] = id;
    if (auto p = model_preset(id))
      for (auto& [k, val] : *p) out[k] = val;
    if (auto dn = json::str(mo, "display_name"); !dn.empty()) out["display_name"] = dn;
    apply_listed_metadata(mo, out);
    models.push_back(std::move(out));
  }
  boost::json::object payload;
  payload["models"] = std::move(models);
  return Reply{KEEL_OK, std::move(payload)};
}

}  // namespace keel::providers
