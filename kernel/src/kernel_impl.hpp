// Kernel internals shared by kernel.cpp (boot, services), session.cpp and turn_loop.cpp.
#pragma once

#include <keel/abi.h>
#include <keel/kernel/kernel.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace keel {

// The resolved model provider of a session: which module speaks its wire protocol.
struct ProviderChoice {
  std::string id;      // "openai", "ollama", "replay", ...
  std::string module;  // provider capability name: "openai-responses", "openai-chat", "anthropic", "replay"
  boost::json::object entry;  // the merged [model_providers.<id>] table
};

// Resolves `model_provider` against built-in entries and [model_providers.*]. Throws ConfigError.
ProviderChoice resolve_provider(const Config& config, const std::string& id);

struct ToolCall {
  std::string call_id, name, item_id;
  bool freeform = false;
  std::string arguments;  // function: JSON text; custom: freeform input
};

struct Session {
  std::string id;
  std::string cwd, model;
  ProviderChoice provider;

  std::mutex mu;
  boost::json::array history;
  std::deque<std::string> pending_input;  // typed while a turn runs
  std::vector<std::function<void(const TurnResult&)>> waiters;  // of the running turn
  bool running = false;
  std::atomic<bool> interrupted{false};
  std::set<std::uint64_t> active_requests;
  std::uint64_t next_item = 0;
  std::uint64_t turns = 0;
  boost::json::object total_usage;
  std::thread worker;
};

struct Kernel::Impl : ToolRegistry {
  explicit Impl(Config c);
  ~Impl() override;

  Config config;
  Bus bus;
  std::unique_ptr<ModuleHost> host;

  mutable std::mutex sessions_mu;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  std::string default_session;

  std::mutex tools_mu;
  std::map<std::string, InProcessTool> inproc_tools;

  void register_tool(InProcessTool tool) override;
  void unregister_tool(const std::string& name) override;

  void log(keel_log_level level, std::string_view message);
  boost::json::object module_config(const ModuleInfo& info);
  void serve_kernel_topics();

  std::shared_ptr<Session> session(const std::string& id) const;
  std::string start_session(const SessionOptions& options);
  void submit(const std::shared_ptr<Session>& s, std::string text, std::function<void(const TurnResult&)> done);
  void interrupt(const std::string& session_id);

  // turn_loop.cpp
  void run_turns(std::shared_ptr<Session> s);
  TurnResult run_turn(Session& s);
  void publish(Session& s, std::string_view type, boost::json::object body, bool coalescable = false);
  std::string next_item_id(Session& s);
  // tool_dispatch.cpp
  void run_tool_calls(Session& s, const std::string& turn_id, const std::vector<ToolCall>& calls);
  boost::json::object run_tool_call(Session& s, const std::string& turn_id, const ToolCall& call);
  bool parallel_safe(const std::string& tool);
  boost::json::array tool_specs();
};

}  // namespace keel
