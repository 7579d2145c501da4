// Kernel internals shared by kernel.cpp (boot, services), session.cpp and turn_loop.cpp.
#pragma once

#include <keel/abi.h>
#include <keel/kernel/kernel.hpp>
#include <keel/kernel/providers.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace keel {

struct ToolCall {
  std::string call_id, name, item_id;
  bool freeform = false;
  std::string arguments;  // function: JSON text; custom: freeform input
};

// An answer a turn waits for from outside it (the user's approval). The reply callback shares
// it, and may run after the turn stopped waiting, even after the kernel is gone.
struct PendingAnswer {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<std::string> value;
  void answer(std::string v) {  // the first answer stands
    {
      std::lock_guard lock(mu);
      if (!value) value = std::move(v);
    }
    cv.notify_all();
  }
};

struct Session {
  std::string id;
  std::string cwd, model, ui;
  std::string instructions;  // base instructions + AGENTS.md files
  std::string forked_from;
  ProviderChoice provider;
  std::int64_t context_window = 0;     // 0: unknown, no automatic compaction
  std::int64_t auto_compact_limit = 0;
  bool parallel_tool_calls = true;
  std::set<std::string> approved_for_session;  // commands the user approved for this session
  std::string turn_diff;                       // unified diffs of this turn's file changes
  std::vector<std::string> pending_images;     // data URLs to attach to the next request

  std::mutex mu;
  boost::json::array history;
  std::deque<std::string> pending_input;  // typed while a turn runs
  std::vector<std::function<void(const TurnResult&)>> waiters;  // of the running turn
  bool running = false;
  std::atomic<bool> interrupted{false};
  std::set<std::uint64_t> active_requests;
  std::set<std::shared_ptr<PendingAnswer>> pending_answers;  // interrupt() answers them "abort"
  // For automatic compaction: the tokens of the last model response (input and output) and
  // the history items it covered. 0 after a compaction: one history is summarized once.
  std::int64_t context_tokens = 0;
  std::size_t context_items = 0;
  std::uint64_t next_item = 0;
  std::uint64_t turns = 0;
  boost::json::object total_usage;
  std::thread worker;
};

struct Kernel::Impl : ToolRegistry, MemoryApi {
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
  boost::json::array last_n(int n) override;
  boost::json::array search(const std::string& query, int limit) override;
  boost::json::array long_term_memory(const std::string& method, boost::json::object payload);
  void unregister_tool(const std::string& name) override;

  void log(keel_log_level level, std::string_view message) const;
  boost::json::object module_config(const ModuleInfo& info);
  void serve_kernel_topics();

  std::shared_ptr<Session> session(const std::string& id) const;
  // sessions.cpp
  std::string start_session(const SessionOptions& options);
  void append_history(Session& s, boost::json::object item);  // history + rollout
  void persist(Session& s, boost::json::object record);
  std::string memory_server() const;
  std::string project_instructions(const std::string& cwd) const;
  bool compact_history(Session& s, boost::json::object& usage, std::string& error, bool in_turn = false);

  // approvals.cpp
  struct Verdict {
    bool run = false;         // go ahead
    bool sandboxed = true;    // inside the sandbox
    std::string refusal;      // the output for the model when not run
  };
  Verdict authorize(Session& s, const ToolCall& call);
  std::string ask_user(Session& s, const ToolCall& call, const boost::json::array& argv, const std::string& reason);
  boost::json::object sandbox_policy(const Session& s, bool sandboxed) const;
  void serve_sandbox();

  // turn_loop.cpp
  void submit(const std::shared_ptr<Session>& s, std::string text, std::function<void(const TurnResult&)> done);
  void interrupt(const std::string& session_id);
  // Sends a request of the session's turn and waits for its reply; interrupt() cancels it.
  std::pair<int, boost::json::object> call_tracked(Session& s, const std::string& topic,
                                                   const boost::json::object& payload, Request::EmitFn on_emit = nullptr);
  void run_turns(std::shared_ptr<Session> s);
  TurnResult run_turn(Session& s);
  bool context_full(Session& s);
  void publish(Session& s, std::string_view type, boost::json::object body, bool coalescable = false);
  std::string next_item_id(Session& s);
  // tool_dispatch.cpp
  void run_tool_calls(Session& s, const std::string& turn_id, const std::vector<ToolCall>& calls);
  boost::json::object run_tool_call(Session& s, const std::string& turn_id, const ToolCall& call);
  std::pair<int, boost::json::object> send_tool_call(Session& s, const ToolCall& call, const std::string& server,
                                                     const boost::json::object& payload);
  bool parallel_safe(const std::string& tool);
  boost::json::array tool_specs();
};

}  // namespace keel
