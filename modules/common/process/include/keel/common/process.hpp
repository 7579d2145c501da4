// keel::common process runner — run one command to completion, the way a coding agent's
// shell tool needs it:
//
//  - spawned from an argv (no shell in between) with a working directory and an environment
//    (the parent's, plus overrides), in a session / process group of its own;
//  - stdin from /dev/null (or a pipe fed with given bytes), stdout and stderr captured
//    separately and interleaved as they arrive, with a byte cap that keeps head and tail so
//    memory stays bounded whatever the command prints;
//  - a timeout and a cancellation hook that kill the *whole* process group (SIGTERM, a short
//    grace, then SIGKILL), so grandchildren (`sleep 100 &`) die too;
//  - an optional callback per chunk of output, for streaming progress.
//
// Failures to start (no such program, missing working directory) never throw: they come back
// as a result with exit code 127 (126 when the program exists but cannot be executed) and a
// message in `error`, like a shell would report them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel::common {

enum class OutputStream { Stdout, Stderr };

// A byte sink that keeps the first head_cap bytes and the last tail_cap bytes of everything
// appended, and counts what it dropped in between. Memory use stays below
// head_cap + 2 * tail_cap.
class CappedBuffer {
 public:
  explicit CappedBuffer(std::size_t max_bytes = 1024 * 1024);

  void append(std::string_view data);

  // True if bytes were dropped from the middle.
  bool truncated() const { return dropped_bytes() != 0; }
  // Everything, when nothing was dropped (otherwise head + tail, joined without a marker).
  std::string str() const;
  std::string_view head() const { return head_; }
  std::string_view tail() const;
  std::uint64_t dropped_bytes() const;
  std::uint64_t dropped_lines() const;  // newlines in the dropped bytes
  std::uint64_t total_bytes() const { return total_bytes_; }
  std::uint64_t total_lines() const;    // newlines, plus one for an unterminated last line
  std::size_t retained_bytes() const { return head_.size() + tail().size(); }
  std::size_t max_bytes() const { return head_cap_ + tail_cap_; }

 private:
  std::size_t head_cap_, tail_cap_;
  std::string head_;
  std::string tail_;  // holds up to 2 * tail_cap_; only its last tail_cap_ bytes count
  std::uint64_t total_bytes_ = 0;
  std::uint64_t total_newlines_ = 0;
  std::uint64_t dropped_bytes_ = 0;    // erased from tail_ (beyond what tail() hides)
  std::uint64_t dropped_newlines_ = 0;
  char last_byte_ = 0;
};

struct ProcessOptions {
  std::vector<std::string> argv;  // argv[0] is looked up on the child's PATH unless it has a '/'
  std::string cwd;                // empty: the caller's working directory

  bool inherit_env = true;                         // start from the caller's environment
  std::map<std::string, std::string> env;          // variables to set (override inherited ones)
  std::vector<std::string> env_remove;             // variables to drop

  std::optional<std::string> stdin_data;           // fed through a pipe, then closed; else /dev/null

  std::optional<std::chrono::milliseconds> timeout;           // none: wait forever
  std::chrono::milliseconds kill_grace{250};                   // SIGTERM -> SIGKILL delay
  // After the child itself exited, how long to keep reading output that grandchildren (still
  // holding the pipes, e.g. `server &`) may write. The group is not killed for that.
  std::chrono::milliseconds drain_timeout{2000};
  std::chrono::milliseconds poll_interval{25};                 // how often `cancelled` is asked

  std::function<bool()> cancelled;                 // polled; true kills the group
  const std::atomic<bool>* cancel_flag = nullptr;  // alternative to `cancelled`

  std::size_t max_output_bytes = 1024 * 1024;      // cap of each captured buffer (head + tail)

  // Called on the calling thread for each chunk read, in arrival order. Chunks are raw bytes
  // (a UTF-8 sequence may straddle two chunks).
  std::function<void(OutputStream, std::string_view)> on_output;
};

struct ProcessResult {
  int exit_code = -1;  // exit status, 128 + signal when killed by one, 127/126 if it never ran
  int term_signal = 0; // the signal that ended it, if any
  bool timed_out = false;
  bool cancelled = false;
  bool spawned = false;  // false: it never ran; see `error`
  std::string error;     // why it could not be started (empty on success)
  int pid = -1;          // also the process group id
  std::chrono::nanoseconds wall_time{0};

  CappedBuffer stdout_buf;
  CappedBuffer stderr_buf;
  CappedBuffer aggregated;  // stdout and stderr interleaved as they arrived

  double wall_seconds() const { return std::chrono::duration<double>(wall_time).count(); }
  std::string stdout_text() const { return stdout_buf.str(); }
  std::string stderr_text() const { return stderr_buf.str(); }
  std::string output() const { return aggregated.str(); }
};

// Runs the command to completion (or timeout / cancellation) on the calling thread.
ProcessResult run_process(const ProcessOptions& options);

// The first executable regular file called `name` in `path_env` (a PATH-style list; default:
// the PATH environment variable, or the system default path when unset). A name containing
// '/' is returned as is if it is executable.
std::optional<std::string> find_on_path(std::string_view name, std::optional<std::string_view> path_env = {});

// POSIX shell quoting of one word / of an argv joined by spaces (for display and logs).
std::string shell_quote(std::string_view word);
std::string shell_join(const std::vector<std::string>& argv);

}  // namespace keel::common
