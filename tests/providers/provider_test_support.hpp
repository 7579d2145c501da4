// Shared helpers for the provider tests: a collector for emitted events, a fast-retry
// config pointed at the mock server, and small JSON accessors.
#pragma once

#include <keel/providers/config.hpp>
#include <keel/providers/stream.hpp>
#include <keel/testing/mock_model_server.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace keel::test {

namespace bj = boost::json;

struct Collector {
  std::mutex mu;
  std::vector<bj::object> events;

  providers::EmitFn fn() {
    return [this](const bj::object& e) {
      std::lock_guard lock(mu);
      events.push_back(e);
    };
  }
  std::vector<bj::object> of(std::string_view type) {
    std::lock_guard lock(mu);
    std::vector<bj::object> out;
    for (auto& e : events)
      if (e.at("type").as_string() == type) out.push_back(e);
    return out;
  }
  std::string deltas(std::string_view type = "output_text.delta") {
    std::string s;
    for (auto& e : of(type)) s += e.at("delta").as_string();
    return s;
  }
};

// A config for the mock server with quick retries and a short idle timeout.
inline providers::ProviderConfig mock_config(const testing::MockModelServer& server, std::string path,
                                             std::string env_key = "KEEL_TEST_MOCK_KEY") {
  providers::ProviderConfig c;
  c.id = "mock";
  c.name = "Mock";
  c.base_url = server.url() + path;
  c.env_key = env_key;
  c.model = "mock-model";
  c.retry_base_delay_ms = 1;
  c.retry_max_delay_ms = 10;
  c.stream_idle_timeout_ms = 2000;
  c.connect_timeout_ms = 2000;
  return c;
}

inline void set_env(const char* name, const char* value) { ::setenv(name, value, 1); }

inline bj::object parse_obj(std::string_view s) { return bj::parse(s).as_object(); }

inline const bj::array& items_of(const providers::Reply& r) { return r.payload.at("items").as_array(); }

inline std::string error_code(const providers::Reply& r) {
  return std::string(r.payload.at("error").as_object().at("code").as_string());
}
inline std::string error_message(const providers::Reply& r) {
  return std::string(r.payload.at("error").as_object().at("message").as_string());
}

inline std::string str(const bj::value& v, std::string_view key) {
  auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

struct Stopwatch {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  long long ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  }
};

// A sample history exercising every item type.
inline bj::object sample_request() {
  return parse_obj(R"({
    "model": "mock-model",
    "instructions": "You are a coding agent.",
    "input": [
      {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: read-only."}]},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List the files."}]},
      {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thinking"}]},
      {"type": "message", "id": "msg_1", "role": "assistant", "content": [{"type": "output_text", "text": "Sure."}]},
      {"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "shell", "arguments": "{\"command\":[\"ls\"]}"},
      {"type": "function_call", "id": "fc_2", "call_id": "call_b", "name": "shell", "arguments": "{\"command\":[\"pwd\"]}"},
      {"type": "function_call_output", "call_id": "call_a", "output": "a.txt\nb.txt"},
      {"type": "function_call_output", "call_id": "call_b", "output": "/work"},
      {"type": "custom_tool_call", "call_id": "call_c", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
      {"type": "custom_tool_call_output", "call_id": "call_c", "output": "Done."},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]}
    ],
    "tools": [
      {"type": "function", "name": "shell", "description": "Runs a command",
       "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                      "required": ["command"]}},
      {"type": "custom", "name": "apply_patch", "description": "Applies a patch",
       "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"}}
    ],
    "parallel_tool_calls": true,
    "session_id": "sess-1"
  })");
}

}  // namespace keel::test
