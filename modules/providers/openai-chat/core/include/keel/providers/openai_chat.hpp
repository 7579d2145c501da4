// Chat Completions (POST {base_url}/chat/completions, stream: true) — what Ollama,
// llama.cpp's server, vLLM, LM Studio, OpenRouter and most others speak.
//
// Items → messages: instructions and leading developer/system messages become one system
// message (later developer messages are sent as user messages, which every chat template
// accepts); function_call items become assistant `tool_calls` (consecutive calls — and an
// assistant text right before them — merge into one assistant message; arguments that are
// not a JSON object are resent as {"invalid_json": "<text>"}); outputs become
// `tool` messages with tool_call_id; reasoning items are not sent. Freeform ("custom") tools
// are offered as functions taking {"input": string} and their calls come back as
// custom_tool_call items. Stream: content and reasoning_content/reasoning deltas, tool-call
// fragments assembled per `index`, usage from the final chunk (stream_options.include_usage),
// `[DONE]` (or a finish_reason followed by the end of the stream) completes the response.
#pragma once

#include <keel/providers/config.hpp>
#include <keel/providers/stream.hpp>

#include <boost/json/object.hpp>

#include <memory>
#include <set>
#include <string>

namespace keel::providers::openai_chat {

// name "OpenAI", base_url "https://api.openai.com/v1", wire_api "chat".
ProviderDefaults defaults();

boost::json::object build_request(const boost::json::object& request, const ProviderConfig& config);

std::unique_ptr<StreamDecoder> make_decoder(const EmitFn& emit, std::string provider_label,
                                            std::set<std::string> custom_tools);

Reply stream(const ProviderConfig& config, const boost::json::object& request, const EmitFn& emit,
             const CancelFn& cancelled);

// GET {base_url}/models.
Reply models(const ProviderConfig& config, const CancelFn& cancelled);

}  // namespace keel::providers::openai_chat
