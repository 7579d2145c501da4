// A replay script: one model response per line of JSONL, played in order, one per request.
//
// Each line is either a full response {"items": [Responses-API items]} or the shorthand
//   {"reasoning": "...", "text": "...",
//    "tool_calls": [{"name": "shell", "arguments": {...} | "<json text>", "call_id"?: "..."}],
//    "custom_tool_calls": [{"name": "apply_patch", "input": "..."}],
//    "expect": {"output_contains": "55"},
//    "error": {"code": "context_window_exceeded", "message": "..."}}
// `expect` checks the newest tool output in the request before answering, so a scripted
// session fails loudly when a real tool did not do what the script assumed.
// Blank lines and lines starting with '#' are ignored.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::replay {

struct ScriptError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Response {
  int line = 0;
  boost::json::array items;  // output items, as the provider replies them
  std::optional<std::string> expect_output_contains;
  std::optional<boost::json::object> error;  // reply with this error instead
};

// Throws ScriptError naming the file and line of the first malformed response.
std::vector<Response> load_script(const std::filesystem::path& path);
std::vector<Response> parse_script(std::string_view text, const std::string& source);

// The text of the newest function/custom tool call output in a request's input.
std::optional<std::string> last_tool_output(const boost::json::array& input);

}  // namespace keel::replay
