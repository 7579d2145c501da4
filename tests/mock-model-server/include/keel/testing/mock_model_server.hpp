// A model server for tests: real HTTP on loopback, speaking the OpenAI Responses, Chat
// Completions and Anthropic Messages streaming formats, driven by a script of responses
// (JSONL, one response per request, format in README.md), recording every request, and
// able to misbehave on cue (HTTP errors, a stream cut mid-event, a stall, invalid JSON...).
//
//   keel::testing::MockModelServer server;
//   server.add_script(R"({"text": "Hello"})");
//   ... point a provider at server.url() + "/v1" ...
//   auto reqs = server.requests();   // what was sent
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::testing {

struct RecordedRequest {
  std::string method;
  std::string path;   // including the query string
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Case-insensitive; "" when absent.
  std::string header(std::string_view name) const;
  // The body parsed as JSON (null when it is not JSON).
  boost::json::value json() const;
};

class MockModelServer {
 public:
  struct Options {
    std::uint16_t port = 0;        // 0: any free port
    std::string api_key;           // when set, requests without it get a 401
    std::string record_path;       // when set, each request is appended there as a JSON line
    std::string model = "mock-model";
  };

  MockModelServer();
  explicit MockModelServer(Options options);
  ~MockModelServer();
  MockModelServer(const MockModelServer&) = delete;
  MockModelServer& operator=(const MockModelServer&) = delete;

  std::uint16_t port() const;
  std::string url() const;  // "http://127.0.0.1:PORT"

  // Appends responses: JSONL text, one response object per line; blank lines and lines
  // starting with '#' are skipped. Throws std::invalid_argument naming the bad line.
  void add_script(std::string_view jsonl);
  void add_response(const boost::json::object& response);
  void load_script_file(const std::string& path);
  std::size_t pending() const;  // scripted responses not yet served

  // What GET .../models answers: {"object":"list","data": models}.
  void set_models(const boost::json::array& models);

  std::vector<RecordedRequest> requests() const;
  // Requests to the model endpoints only (not /models), in arrival order.
  std::vector<RecordedRequest> model_requests() const;
  void clear();  // forget the script and the recorded requests

  // Stops accepting, wakes stalled handlers and waits for them. Called by the destructor.
  void stop();

  struct State;

 private:
  std::shared_ptr<State> state_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::testing
