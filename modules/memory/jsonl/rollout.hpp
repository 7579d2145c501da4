// Session rollouts: one JSONL file per session under $KEEL_HOME/sessions/YYYY/MM/DD/.
//
//   rollout-2025-01-02T03-04-05-<session_id>.jsonl
//   {"timestamp":"2025-01-02T03:04:05.123Z","type":"session_meta","session_id":...,"cwd":...}
//   {"timestamp":...,"type":"turn_context",...}
//   {"timestamp":...,"type":"item","item":{"type":"message","role":"user",...}}
//   {"timestamp":...,"type":"compaction","summary":"...","replacement_history":[items]}
//   {"timestamp":...,"type":"event",...}
//
// Every record is one line written with a single write() before append() returns, so a
// process killed at any moment loses nothing already appended; a torn last line (the write
// that was under way) is skipped with a warning on load, never a failed load.
#pragma once

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

namespace keel::memory {

// An error with the keel_status the module answers it with.
struct RolloutError : std::runtime_error {
  RolloutError(int status, const std::string& message) : std::runtime_error(message), status(status) {}
  int status;
};

// What a rollout file reconstructs to.
struct Reconstruction {
  boost::json::object session;     // the session_meta record (without "type")
  boost::json::array items;        // the history, compactions applied, interrupted calls closed
  boost::json::array warnings;     // strings
  boost::json::value turn_context; // the last turn_context record, or null
};

// Rebuilds the history from a rollout's text. Never throws on bad content: every line that
// cannot be used is skipped with a warning. `name` prefixes warnings.
Reconstruction reconstruct(std::string_view text, std::string_view name = "rollout");

// The output synthesized for a tool call that never finished.
inline constexpr std::string_view kInterruptedOutput = "interrupted: keel stopped before this call finished";

bool valid_session_id(std::string_view id);

class RolloutStore {
 public:
  RolloutStore(std::filesystem::path keel_home, bool fsync_each_write);
  ~RolloutStore();
  RolloutStore(const RolloutStore&) = delete;
  RolloutStore& operator=(const RolloutStore&) = delete;

  // The protocol's methods; each takes the request payload and returns the reply payload.
  boost::json::object open(const boost::json::object& request);
  boost::json::object append(const boost::json::object& request);
  boost::json::object load(const boost::json::object& request);
  boost::json::object list(const boost::json::object& request);
  boost::json::object close(const boost::json::object& request);

  const std::filesystem::path& sessions_dir() const { return sessions_dir_; }

 private:
  struct Session;
  std::shared_ptr<Session> find_open(const std::string& id);
  // The rollout of a session id (or unique id prefix); throws RolloutError if none.
  std::filesystem::path find_file(std::string_view id) const;

  std::filesystem::path sessions_dir_;
  bool fsync_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> open_;
};

}  // namespace keel::memory
