// One interactive conversation: the prompt loop, turns, approval questions and Ctrl-C.
//
// Everything that reads from the person happens on the thread running run(): an approval
// request from the kernel is queued and answered from there (the kernel's thread must not
// block on a person), so a prompt never competes with another for the same keystrokes.
#pragma once

#include "render.hpp"
#include "terminal.hpp"

#include <keel/sdk/module.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

namespace keel::chat {

class Conversation {
 public:
  Conversation(keel::sdk::Host& host, Terminal& term, boost::json::object args);
  ~Conversation();

  // Until /quit, Ctrl-D or Ctrl-C twice at the prompt; returns the process exit code.
  int run();
  // From the kernel (any thread): a tool call waits for the person's decision.
  void approve(keel::sdk::Call call);
  // Ctrl-C, forwarded by the launcher: stops the running turn, or at the prompt asks for a
  // second one to quit. False: not handled here — the turn did not stop within a while of the
  // first Ctrl-C, so keel's own shutdown (and a further Ctrl-C's "stop now") takes over.
  bool interrupt();
  // keel is ending (SIGTERM, SIGHUP): return from run() as soon as the turn has stopped.
  void shutdown();

 private:
  bool start_session(const std::string& resume, const std::string& fork);
  void end_session();
  void run_turn(const std::string& text);
  void answer(keel::sdk::Call call);
  // false: the person asked to leave.
  bool command(const std::string& line);
  bool idle_interrupted();

  keel::sdk::Host& host_;
  Terminal& term_;
  boost::json::object args_;
  Renderer renderer_;
  std::string session_id_;
  boost::json::object session_info_;
  std::uint64_t subscription_ = 0;
  std::int64_t tokens_in_ = 0, tokens_out_ = 0;

  std::mutex mu_;
  std::condition_variable changed_;
  bool turn_running_ = false;
  bool turn_replied_ = false;
  bool turn_event_seen_ = false;  // turn.completed / turn.failed rendered: the screen is up to date
  boost::json::object turn_result_;
  std::deque<keel::sdk::Call> approvals_;
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point stop_requested_{};  // of the running turn, by Ctrl-C
  int idle_interrupts_ = 0;  // Ctrl-C at the prompt, not yet seen by the prompt loop
  std::chrono::steady_clock::time_point last_idle_interrupt_{};
};

}  // namespace keel::chat
