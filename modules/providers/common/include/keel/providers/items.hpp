// Helpers for translating the kernel's items (docs/protocols.md, "Items") to wire formats
// that lack some of them (Chat Completions and Anthropic have no freeform tools, no
// developer role, ...).
#pragma once

#include <keel/providers/config.hpp>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <set>
#include <string>
#include <string_view>

namespace keel::providers {

// request.model, else the configured model; throws ProviderError{bad_request} when neither.
std::string model_of(const boost::json::object& request, const ProviderConfig& config);

// The text of a message item: its content parts' `text` joined (input_text, output_text,
// text, summary_text), or the content itself when it is a string.
std::string content_text(const boost::json::object& item);

// A function_call_output's `output` as text: a string as is, an array of content parts
// joined, {"content": "..."} unwrapped, anything else serialised.
std::string output_text(const boost::json::value* output);

// Names of the request's freeform ("custom") tools.
std::set<std::string> custom_tool_names(const boost::json::object& request);

// Wire formats without freeform tools see a custom tool as a function taking
// {"input": "<the freeform text>"}; these build that function's description and schema and
// take its arguments apart again. A malformed arguments text is returned as the input
// unchanged (the tool then reports the problem to the model).
std::string freeform_description(const boost::json::object& tool);
boost::json::object freeform_schema();
std::string freeform_input(std::string_view arguments);
std::string freeform_arguments(std::string_view input);

// A history function_call's arguments made safe to resend: valid JSON object text as is
// ("" → "{}"), anything else wrapped as {"invalid_json": "<text>"} — servers that parse
// the arguments of past calls (Ollama, Anthropic) would otherwise reject every later request.
std::string resendable_arguments(std::string_view arguments);

// The "parameters" schema of a function tool, {"type":"object","properties":{}} when absent.
boost::json::value function_parameters(const boost::json::object& tool);

}  // namespace keel::providers
