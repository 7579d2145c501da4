// Anthropic Messages API (POST {base_url}/v1/messages, stream: true).
//
// Items → request: instructions and leading developer/system messages become `system`;
// messages alternate user/assistant (consecutive same-role content merges into one message);
// function_call → assistant `tool_use` block (input = the parsed arguments; arguments that
// are not a JSON object are sent as {"invalid_json": "<text>"}); outputs → user
// `tool_result` blocks; custom tools → tools taking {"input": string}; reasoning items are
// not sent. `max_tokens` from the provider config (default 8192) unless the request has
// max_output_tokens; parallel_tool_calls:false → tool_choice.disable_parallel_tool_use.
// Stream: text_delta → output_text.delta, input_json_delta assembled per block →
// tool_input.delta and function_call.arguments (unparsed), thinking_delta → reasoning.delta;
// usage from message_start (input, cache read/creation) and message_delta (output).
#pragma once

#include <keel/providers/config.hpp>
#include <keel/providers/stream.hpp>

#include <boost/json/object.hpp>

#include <memory>
#include <set>
#include <string>

namespace keel::providers::anthropic {

// name "Anthropic", base_url "https://api.anthropic.com", wire_api "anthropic".
ProviderDefaults defaults();

// {base_url}/v1/<path>, or {base_url}/<path> when base_url already ends in /v1.
std::string endpoint(const ProviderConfig& config, std::string_view path);

boost::json::object build_request(const boost::json::object& request, const ProviderConfig& config);

std::unique_ptr<StreamDecoder> make_decoder(const EmitFn& emit, std::string provider_label,
                                            std::set<std::string> custom_tools);

Reply stream(const ProviderConfig& config, const boost::json::object& request, const EmitFn& emit,
             const CancelFn& cancelled);

// GET {base_url}/v1/models.
Reply models(const ProviderConfig& config, const CancelFn& cancelled);

}  // namespace keel::providers::anthropic
