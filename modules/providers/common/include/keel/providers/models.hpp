// Model metadata: built-in presets for well-known models, and the provider's models
// endpoint (OpenAI-style {"data":[{"id"}]}, Anthropic's adds "display_name", Ollama's native
// {"models":[{"name"}]}).
#pragma once

#include <keel/providers/config.hpp>
#include <keel/providers/stream.hpp>

#include <boost/json/object.hpp>

#include <optional>
#include <string_view>

namespace keel::providers {

// {"context_window","max_output_tokens","supports_parallel_tool_calls",
//  "supports_reasoning_effort","supports_images"} for a well-known model id (longest
// matching prefix), or nullopt.
std::optional<boost::json::object> model_preset(std::string_view model_id);

// GET url (with the configured query params and `headers`), reply
// {"models": [{"id", ...preset fields when known, "display_name"?}]}. What the listing says
// about a model overrides its preset: context length (`context_length`, vLLM's
// `max_model_len`, `context_window`), output limit (`max_output_tokens`,
// `max_completion_tokens`) and OpenRouter's `top_provider.{context_length,
// max_completion_tokens}`, `supported_parameters` and `architecture.input_modalities`.
Reply fetch_models(const ProviderConfig& config, const std::string& url, const common::HttpHeaders& headers,
                   const CancelFn& cancelled, const ApiKey& key);

}  // namespace keel::providers
