// The embedding API.
//
//   keel::Kernel kernel(keel::Config::load({}));
//   auto sub = kernel.subscribe("event", [](const keel::Event& e) { ... });
//   auto reply = kernel.submit_user_turn("fix the failing test").get();
//
// A Kernel owns the bus, the module host (every installed module, verified and loaded) and
// the sessions. Everything it does is also reachable over the bus, which is how UI modules
// drive it.
#pragma once

#include <keel/kernel/bus.hpp>
#include <keel/kernel/config.hpp>
#include <keel/kernel/module_host.hpp>

#include <boost/json/object.hpp>

#include <functional>
#include <future>
#include <memory>
#include <string>

namespace keel {

struct TurnResult {
  std::string session_id;
  std::string status;  // "completed", "failed", "interrupted"
  std::string last_agent_message;
  std::string error;
  boost::json::object usage;
  bool ok() const { return status == "completed"; }
};

struct SessionOptions {
  std::string cwd;       // default: the config's cwd
  std::string model;     // default: config `model`
  std::string provider;  // default: config `model_provider`
  std::string ui;        // the front end that answers approval requests (e.g. "exec")
  std::string resume;    // a session id, or "last": continue that session's rollout
  std::string fork;      // a session id: a new session starting from a copy of its history
};

// An in-process tool, offered to the model from the next request on.
struct InProcessTool {
  std::string name, description;
  std::string schema_json = R"({"type":"object","properties":{}})";
  bool parallel_safe = false;
  // Gets the parsed arguments and the request payload; returns the output for the model.
  // Throwing reports the message to the model as a failed call.
  std::function<std::string(const boost::json::object& args, const boost::json::object& request)> handler;
};

class ToolRegistry {
 public:
  virtual ~ToolRegistry() = default;
  virtual void register_tool(InProcessTool tool) = 0;
  virtual void unregister_tool(const std::string& name) = 0;
};

// Long-term memory, for embedders: the memory module named by `long_term_memory` in the
// configuration (default "sqlite", from memory-sqlite). Each call throws std::runtime_error
// with the module's message if it is not loaded or fails.
class MemoryApi {
 public:
  virtual ~MemoryApi() = default;
  virtual boost::json::array last_n(int n) = 0;                                  // newest first
  virtual boost::json::array search(const std::string& query, int limit = 5) = 0;  // best first
};

class Kernel {
 public:
  explicit Kernel(Config config);
  ~Kernel();
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  const Config& config() const;
  Bus& bus();
  ModuleHost& modules();
  ToolRegistry& registry();
  MemoryApi& memory();

  std::string start_session(SessionOptions options = {});
  // Runs one turn in the default session (started on first use). If a turn is already
  // running in that session, the input joins it and the future resolves when it ends.
  std::future<TurnResult> submit_user_turn(std::string text);
  std::future<TurnResult> submit(const std::string& session_id, std::string text);
  void interrupt(const std::string& session_id);
  // Summarizes the history now and replaces it with the summary (also done automatically
  // near the model's context window).
  std::future<TurnResult> compact(const std::string& session_id);
  // The history of a session (items as sent to the provider).
  boost::json::array history(const std::string& session_id) const;

  std::uint64_t subscribe(std::string topic_prefix, Bus::Handler handler);
  void unsubscribe(std::uint64_t id);

  // Hands control to a UI module ("exec", "tui", ...) and returns its exit code.
  int run_ui(const std::string& name, boost::json::object args);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel
