// Rendering a scripted response in each wire format (internal to the mock server).
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace keel::testing::wire {

enum class Format { responses, chat, anthropic };

struct ToolCall {
  std::string name, call_id;
  std::string arguments;  // JSON text (possibly malformed, on purpose)
  bool custom = false;    // a freeform call: `input` instead of arguments
  std::string input;
};

struct Usage {
  std::int64_t input = 10, cached = 0, output = 5, reasoning = 0;
};

// One scripted response, read from a script line (see README.md).
struct Response {
  std::string text, reasoning;
  std::vector<ToolCall> tool_calls;
  Usage usage;
  std::size_t chunk_size = 8;     // characters per delta
  std::int64_t chunk_delay_ms = 0;
  std::size_t write_size = 0;     // when > 0: the stream is written in pieces of this many bytes
  // fault
  std::string fault;              // "" or a fault name
  boost::json::object fault_args; // the fault object's other fields
};

// Throws std::invalid_argument for a line that is not a valid response.
Response parse_response(const boost::json::object& line);

struct HttpError {
  int status = 500;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

bool is_http_fault(const std::string& fault);
HttpError http_error(Format format, const Response& r);
// An error for an unscripted request (400, wire-shaped).
HttpError plain_error(Format format, int status, const std::string& type, const std::string& message);

// The whole stream as SSE frames (each ends with the blank line).
std::vector<std::string> render(Format format, const Response& r, const std::string& model, int serial,
                                bool include_usage);

// An in-stream error frame ("stream_error" fault).
std::string error_frame(Format format, const Response& r, int serial);

}  // namespace keel::testing::wire
