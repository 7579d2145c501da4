// keel unified-exec module: Codex's `exec_command` / `write_stdin` — long-running,
// interactive processes in a pseudo-terminal, so the model can drive a REPL, a dev server or a
// test watcher across several tool calls.
//
//   exec_command {"cmd", "workdir"?, "yield_time_ms"? (10000), "max_output_tokens"?, "shell"?, "login"? (true)}
//   write_stdin  {"session_id", "chars"? (""), "yield_time_ms"? (250), "max_output_tokens"?}
//
// exec_command runs `cmd` with `<shell> -lc` (the user's $SHELL, else bash) in a new PTY whose
// slave is the process's controlling terminal (its own session and process group), then
// collects what it prints for yield_time_ms (clamped to 250..30000), returning early if it
// exits. write_stdin types `chars` into the PTY (send "" to just poll; "\u0003" is Ctrl-C) and
// collects for its yield time. Both answer in Codex's shape:
//
//   Chunk ID: 3f9a1c
//   Wall time: 0.2513 seconds
//   Process exited with code 0          (or: Process running with session ID 3)
//   Original token count: 12345         (only when the output was truncated)
//   Note: ...                           (only when there is something to say)
//   Output:
//   <what the process printed since the last call, truncated in the middle to
//    max_output_tokens * 4 bytes>
//
// Sessions
//  - ids are small integers (1, 2, ...) per module instance; a session belongs to the kernel
//    session that started it (the request's session_id) and is unknown to any other.
//  - a session whose process exited is removed once its final output has been returned; a
//    later write_stdin to it answers "Unknown session id".
//  - at most `max_sessions` (64) live sessions. Starting one more closes the least recently
//    used idle session — one that exited is preferred, and the 8 most recently used are never
//    chosen — and the reply says which one in a `Note:` line. Only if every candidate is in
//    use by another call is the new command refused.
//  - a session's processes never outlive it: when it is closed, removed after exiting, or the
//    module stops (session end), its process group and every process of its terminal session
//    get SIGHUP + SIGTERM, then SIGKILL after `kill_grace_ms`.
//  - unread output is kept per session in a head + tail buffer of `buffer_max_bytes`, so
//    memory stays bounded whatever a process prints between two polls.
//  - cancellation: an interrupted exec_command kills the process it started; an interrupted
//    write_stdin only stops waiting (the process keeps running for a later call). Both are
//    answered with KEEL_ERR_CANCELLED plus the output collected so far.
//
// Sandboxing: unless the request's sandbox mode is danger-full-access, the argv is wrapped by
// the active sandbox module (`sandbox.prepare`, through keel/sdk/sandbox.hpp like the shell
// module); if that fails the command is not run. When a sandboxed command exits non-zero,
// `sandbox.explain` says whether the sandbox blocked it, and the reason joins the output.
//
// Module configuration (all optional): max_sessions (64), max_output_tokens (10000, the
// default for calls), buffer_max_bytes (1 MiB), item_max_bytes (65536, the item's
// aggregated_output), kill_grace_ms (500), env (object of variables to set).
#include <keel/common/process.hpp>
#include <keel/common/truncate.hpp>
#include <keel/sdk/module.hpp>
#include <keel/sdk/sandbox.hpp>
#include <keel/sdk/tool.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace json = boost::json;
namespace sb = keel::sdk::sandbox;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using keel::sdk::Call;
using keel::sdk::Host;
using keel::sdk::ToolContext;
using keel::sdk::ToolError;
using keel::sdk::ToolResult;

constexpr std::int64_t kMinYieldMs = 250;
constexpr std::int64_t kMaxYieldMs = 30'000;
constexpr std::int64_t kDefaultExecYieldMs = 10'000;
constexpr std::int64_t kDefaultWriteYieldMs = 250;
constexpr std::int64_t kDefaultMaxOutputTokens = 10'000;
constexpr std::size_t kDefaultMaxSessions = 64;
constexpr std::size_t kProtectedRecent = 8;  // the most recently used sessions are never evicted
constexpr std::size_t kDefaultBufferBytes = 1024 * 1024;
constexpr std::size_t kDefaultItemBytes = 64 * 1024;
constexpr std::int64_t kDefaultKillGraceMs = 500;
constexpr std::size_t kMaxDeltaBacklog = 256 * 1024;  // undelivered progress kept per session
constexpr std::size_t kMaxDeltasPerCall = 10'000;
// After the process exited, output still in flight (or written by a grandchild that holds the
// terminal) is read for at most this long.
constexpr auto kExitDrain = 250ms;
constexpr unsigned short kRows = 24, kCols = 80;

// Variables every PTY process gets (as Codex does): no colours or pagers, UTF-8.
const std::pair<const char*, const char*> kPtyEnv[] = {
    {"NO_COLOR", "1"}, {"TERM", "dumb"},   {"LANG", "C.UTF-8"}, {"LC_CTYPE", "C.UTF-8"}, {"LC_ALL", "C.UTF-8"},
    {"COLORTERM", ""}, {"PAGER", "cat"},   {"GIT_PAGER", "cat"}, {"GH_PAGER", "cat"}};

// ---- small helpers -------------------------------------------------------------------------

std::int64_t config_int(const json::object& config, std::string_view key, std::int64_t fallback) {
  const auto* v = config.if_contains(key);
  if (!v) return fallback;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v->as_uint64(), INT64_MAX));
  if (v->is_double() && v->as_double() > -9e18 && v->as_double() < 9e18) return static_cast<std::int64_t>(v->as_double());
  return fallback;
}

std::size_t config_size(const json::object& config, std::string_view key, std::size_t fallback) {
  auto v = config_int(config, key, static_cast<std::int64_t>(fallback));
  return v > 0 ? static_cast<std::size_t>(v) : fallback;
}

std::string format_seconds(double seconds) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4f", seconds);
  return buf;
}

// "\r\n" -> "\n" (a lone "\r", e.g. of a progress bar, stays).
std::string strip_cr(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out.push_back(text[i]);
  return out;
}

// `text` on one line (for a Note:), at most about `max` bytes.
std::string one_line(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  if (out.size() > max) {
    out.resize(keel::common::utf8_floor(out, max));
    out += "...";
  }
  return out;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// A /proc file, read with plain read(2): a process may vanish mid-read, and libstdc++'s
// streams throw on that read error.
std::string read_small_file(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else break;
    if (out.size() > 64 * 1024) break;
  }
  ::close(fd);
  return out;
}

// Sends `sig` to each process group in `sids` (a session leader's pid is also its group's id)
// and to every other process of those terminal sessions (jobs a shell put in groups of their
// own). Processes that left the session with setsid() of their own are out of reach.
void signal_sessions(const std::vector<pid_t>& sids, int sig) {
  if (sids.empty()) return;
  for (pid_t sid : sids)
    if (sid > 1) ::kill(-sid, sig);
  std::set<pid_t> wanted(sids.begin(), sids.end());
  std::error_code ec;
  for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = read_small_file(it->path() / "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    std::istringstream fields(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0;
    fields >> state >> ppid >> pgrp >> session;
    if (!fields || state == 'Z' || state == 'X') continue;
    if (wanted.count(static_cast<pid_t>(session)) && !wanted.count(static_cast<pid_t>(pgrp)))
      ::kill(static_cast<pid_t>(std::stol(name)), sig);
  }
}

void terminate_sessions(const std::vector<pid_t>& sids) {
  signal_sessions(sids, SIGHUP);
  signal_sessions(sids, SIGTERM);
  signal_sessions(sids, SIGCONT);  // a stopped process must run to act on SIGTERM
}

// The user's shell: $SHELL when it is an executable, else bash, else /bin/sh.
std::string user_shell() {
  if (const char* s = std::getenv("SHELL"); s && *s)
    if (auto found = keel::common::find_on_path(s)) return *found;
  if (auto bash = keel::common::find_on_path("bash")) return *bash;
  return "/bin/sh";
}

// ---- spawning in a PTY ---------------------------------------------------------------------

struct Spawned {
  pid_t pid = -1;
  int master = -1;
  int pidfd = -1;
  int error_code = 0;  // 127 / 126 when it could not start
  std::string error;
};

// Starts argv in a new pseudo-terminal. posix_spawn (not fork: keel is multi-threaded, see
// the process module) with POSIX_SPAWN_SETSID makes the child a session leader; glibc runs
// setsid before the file actions, so opening the slave (without O_NOCTTY) as fd 0 makes it
// the child's controlling terminal — what forkpty's login_tty does with TIOCSCTTY.
Spawned spawn_in_pty(const std::vector<std::string>& args, const std::string& cwd,
                     const std::map<std::string, std::string>& overrides) {
  Spawned out;
  auto fail = [&](int code, std::string message) {
    close_fd(out.master);
    out.error_code = code;
    out.error = std::move(message);
    return out;
  };

  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  for (const auto& [k, v] : overrides) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::string program = args[0];
  if (program.find('/') == std::string::npos) {
    auto path = env.find("PATH");
    auto found = path != env.end() ? keel::common::find_on_path(program, std::string_view(path->second))
                                   : keel::common::find_on_path(program);
    if (!found) return fail(127, "command not found: " + program);
    program = *found;
  }
  std::vector<std::string> argv_copy = args;
  std::vector<char*> argv;
  for (auto& a : argv_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  out.master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (out.master < 0) return fail(126, std::string("cannot open a pseudo-terminal: ") + std::strerror(errno));
  char slave[128] = {0};
  if (::grantpt(out.master) != 0 || ::unlockpt(out.master) != 0 || ::ptsname_r(out.master, slave, sizeof slave) != 0)
    return fail(126, std::string("cannot set up the pseudo-terminal: ") + std::strerror(errno));
  struct winsize ws {};
  ws.ws_row = kRows;
  ws.ws_col = kCols;
  ::ioctl(out.master, TIOCSWINSZ, &ws);
  ::fcntl(out.master, F_SETFL, ::fcntl(out.master, F_GETFL) | O_NONBLOCK);

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&actions, 0, 1);
  posix_spawn_file_actions_adddup2(&actions, 0, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  int rc = ::posix_spawn(&out.pid, program.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    out.pid = -1;
    std::string what = rc == ENOENT && !cwd.empty() && !fs::is_directory(cwd) ? "no such directory: " + cwd
                                                                              : std::string(std::strerror(rc));
    return fail(rc == EACCES ? 126 : 127, "failed to start " + program + ": " + what);
  }
#ifdef SYS_pidfd_open
  out.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, out.pid, 0));
  if (out.pidfd >= 0) ::fcntl(out.pidfd, F_SETFD, FD_CLOEXEC);
#endif
  return out;
}

// ---- sessions ------------------------------------------------------------------------------

struct Session {
  int id = 0;
  pid_t pid = -1;  // also its process group and terminal session id
  int master = -1;
  int pidfd = -1;  // readable when the process exits (-1: polled with waitpid)
  std::string command;
  std::string owner;  // the kernel session that started it
  Clock::time_point last_used;
  keel::common::CappedBuffer pending;  // printed but not yet returned to the model
  std::string deltas;                  // not yet streamed as progress (while a call waits)
  bool streaming = false;
  bool held_cr = false;  // the last byte read was "\r" (see io_loop)
  bool exited = false;  // the process was reaped
  int exit_code = -1;
  Clock::time_point exited_at;
  bool eof = false;   // nothing more will be read
  bool busy = false;  // a call is driving it
  std::optional<keel::sdk::sandbox::Command> sandboxed;  // as given to sandbox.prepare, for explain

  explicit Session(std::size_t buffer_bytes) : pending(buffer_bytes) {}
  ~Session() {
    close_fd(master);
    close_fd(pidfd);
  }
};

// A process group to finish off: SIGKILL at `kill_at`, leader reaped when it exits.
struct Doomed {
  pid_t pid;
  Clock::time_point kill_at;
  bool reaped;
};

// Streams output.delta events, never splitting a UTF-8 sequence across two events.
class DeltaStreamer {
 public:
  explicit DeltaStreamer(const Call& call) : call_(call) {}
  void chunk(std::string_view data) {
    carry_.append(data);
    std::size_t n = keel::common::utf8_complete_prefix(carry_);
    if (n == 0) return;
    send(std::string_view(carry_).substr(0, n));
    carry_.erase(0, n);
  }
  void flush() {
    if (!carry_.empty()) send(carry_);
    carry_.clear();
  }

 private:
  void send(std::string_view text) {
    if (sent_ >= kMaxDeltasPerCall) return;
    ++sent_;
    call_.emit(std::string(R"({"type":"output.delta","stream":"stdout","delta":)") + keel::sdk::json_quote(text) + "}");
  }
  const Call& call_;
  std::string carry_;
  std::size_t sent_ = 0;
};

// What one call collected from a session.
struct Collected {
  keel::common::CappedBuffer output{0};
  bool exited = false;
  int exit_code = -1;
  bool cancelled = false;
};

// ---- the module ----------------------------------------------------------------------------

class UnifiedExec : public keel::sdk::Module {
 public:
  UnifiedExec(Host& host, const json::object& config)
      : host_(host),
        config_(config),
        max_sessions_(config_size(config, "max_sessions", kDefaultMaxSessions)),
        buffer_bytes_(config_size(config, "buffer_max_bytes", kDefaultBufferBytes)),
        item_bytes_(config_size(config, "item_max_bytes", kDefaultItemBytes)),
        default_tokens_(config_int(config, "max_output_tokens", kDefaultMaxOutputTokens)),
        kill_grace_(std::chrono::milliseconds(std::max<std::int64_t>(0, config_int(config, "kill_grace_ms", kDefaultKillGraceMs)))),
        rng_(std::random_device{}()) {
    if (default_tokens_ <= 0) default_tokens_ = kDefaultMaxOutputTokens;
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("cannot create the wake-up pipe");
    io_ = std::thread([this] { io_loop(); });
  }

  ~UnifiedExec() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake();
    if (io_.joinable()) io_.join();
    shutdown_all();
    close_fd(wake_[0]);
    close_fd(wake_[1]);
  }

  void handle(Call call) override {
    if (call.method() != "call") {
      call.error(KEEL_ERR_NOT_FOUND, "tools answer the method 'call', not '" + std::string(call.method()) + "'");
      return;
    }
    const bool exec = call.capability() == "exec_command";
    if (!exec && call.capability() != "write_stdin") {
      call.error(KEEL_ERR_NOT_FOUND, "no tool named '" + std::string(call.capability()) + "' in this module");
      return;
    }
    ToolResult result;
    try {
      auto req = json::parse(call.payload());
      ToolContext ctx{host_, call, config_, req.is_object() ? req.as_object() : json::object{}, {}, {}, {}};
      if (auto* cwd = ctx.request.if_contains("cwd"); cwd && cwd->is_string()) ctx.cwd = cwd->as_string();
      if (auto* a = ctx.request.if_contains("arguments")) {
        if (a->is_string()) {
          std::string_view text = a->as_string();
          if (text.find_first_not_of(" \t\r\n") != std::string_view::npos) {
            boost::system::error_code ec;
            auto parsed = json::parse(text, ec);
            if (ec || !parsed.is_object())
              throw ToolError("failed to parse function arguments as a JSON object: " +
                              (ec ? ec.message() : std::string("not an object")));
            ctx.args = std::move(parsed.as_object());
          }
        } else if (a->is_object()) {
          ctx.args = a->as_object();
        }
      }
      result = exec ? exec_command(ctx) : write_stdin(ctx);
    } catch (const std::exception& e) {
      result = ToolResult{e.what(), false, {}};
    }
    json::object out{{"output", keel::sdk::sanitize_utf8(result.output)}, {"success", result.success}};
    if (!result.item.empty()) out["item"] = result.item;
    if (result.status == KEEL_ERR_CANCELLED)
      out["error"] = json::object{{"message", "cancelled"}, {"code", "cancelled"}};
    call.reply(result.status, json::serialize(out));
  }

 private:
  // ---- exec_command ----
  ToolResult exec_command(ToolContext& ctx) {
    const auto started = Clock::now();
    const auto* c = ctx.args.if_contains("cmd");
    if (!c) throw ToolError("missing required argument 'cmd' (the shell command to run, a string)");
    if (!c->is_string()) throw ToolError("argument 'cmd' must be a string (the shell command to run)");
    const std::string cmd(c->as_string());
    if (cmd.find_first_not_of(" \t\r\n") == std::string::npos) throw ToolError("argument 'cmd' must not be empty");
    const auto yield = yield_time(ctx, kDefaultExecYieldMs);
    const auto max_tokens = max_output_tokens(ctx);
    bool login = true;
    if (const auto* l = ctx.args.if_contains("login"); l && !l->is_null()) {
      if (!l->is_bool()) throw ToolError("argument 'login' must be true or false");
      login = l->as_bool();
    }
    std::string shell = user_shell();
    if (const auto* s = ctx.args.if_contains("shell"); s && !s->is_null()) {
      if (!s->is_string()) throw ToolError("argument 'shell' must be a string (a shell program, e.g. /bin/bash)");
      if (!s->as_string().empty()) {
        auto found = keel::common::find_on_path(std::string(s->as_string()));
        if (!found) throw ToolError("shell not found: " + std::string(s->as_string()));
        shell = *found;
      }
    }
    const std::string workdir = resolve_workdir(ctx);
    const std::string display = keel::sdk::sanitize_utf8(cmd);
    // Never ran: exit code 127/126 when it could not start, none when it was refused.
    auto failed = [&](int code, const std::string& message, const std::string& notes = {}) {
      ToolResult r;
      r.success = false;
      std::string text = keel::sdk::sanitize_utf8(message);
      r.output = header(started, code >= 0 ? std::optional<int>(code) : std::nullopt, std::nullopt, std::nullopt, notes) + text;
      r.item = json::object{{"type", "command_execution"}, {"command", display}, {"aggregated_output", text},
                            {"exit_code", code}, {"status", "failed"}};
      return r;
    };
    std::error_code ec;
    if (!fs::is_directory(workdir, ec)) return failed(127, "workdir does not exist or is not a directory: " + workdir);

    std::vector<std::string> argv{shell, login ? "-lc" : "-c", cmd};
    std::map<std::string, std::string> env;
    for (const auto& [k, v] : kPtyEnv) env[k] = v;
    if (const auto* e = config_.if_contains("env"); e && e->is_object())
      for (const auto& [k, v] : e->as_object())
        if (v.is_string()) env[std::string(k)] = std::string(v.as_string());

    // Sandboxing: the active sandbox module wraps the argv (keel/sdk/sandbox.hpp); a refusal
    // is the tool's output.
    std::optional<sb::Command> unwrapped;
    if (const json::object* policy = sb::policy_of(ctx.request)) {
      unwrapped = sb::Command{argv, ctx.cwd, workdir, env, *policy};  // a configured TMPDIR is made writable
      sb::Prepared prepared = sb::prepare(ctx.host, *unwrapped, sb::Wait::on(ctx.call));
      if (!prepared) {
        ToolResult r = failed(-1, "sandbox error: " + prepared.error + "\nThe command was not run.");
        if (prepared.status == KEEL_ERR_CANCELLED) r.status = KEEL_ERR_CANCELLED;
        return r;
      }
      argv = std::move(prepared.argv);
      for (auto& [k, v] : prepared.env) env[k] = std::move(v);
    }

    // Make room: at most max_sessions live sessions (those being started included).
    std::string note;
    {
      std::unique_lock lock(mu_);
      if (sessions_.size() + reserved_ >= max_sessions_) {
        auto victim = pick_victim();
        if (!victim) {
          lock.unlock();
          return failed(-1, "cannot start another interactive session: " + std::to_string(max_sessions_) +
                                " are open and every one that could be closed is in use. End a session (write_stdin "
                                "\"exit\\n\" or \"\\u0003\") and try again.");
        }
        note = "Note: " + std::to_string(max_sessions_) + " interactive sessions were open, so session " +
               std::to_string(victim->id) + " (`" + one_line(victim->command, 80) + "`, least recently used) was closed.";
        close_session_locked(victim);
      }
      ++reserved_;
    }

    Spawned sp = spawn_in_pty(argv, workdir, env);
    if (sp.pid < 0) {
      {
        std::lock_guard lock(mu_);
        --reserved_;
      }
      return failed(sp.error_code, sp.error, note);
    }

    auto s = std::make_shared<Session>(buffer_bytes_);
    s->pid = sp.pid;
    s->master = sp.master;
    s->pidfd = sp.pidfd;
    s->command = display;
    s->sandboxed = std::move(unwrapped);
    s->owner = request_session(ctx);
    s->last_used = Clock::now();
    s->busy = true;
    s->streaming = true;
    {
      std::lock_guard lock(mu_);
      --reserved_;
      s->id = next_id_++;
      sessions_.emplace(s->id, s);
    }
    wake();

    DeltaStreamer streamer(ctx.call);
    Collected got = collect(ctx, s, started + yield, streamer);
    if (got.cancelled && !got.exited) {
      std::lock_guard lock(mu_);
      close_session_locked(s);  // an interrupted start does not leave its process behind
    }
    ToolResult r = finish(ctx, s, std::move(got), started, max_tokens, note);
    return r;
  }

  // ---- write_stdin ----
  ToolResult write_stdin(ToolContext& ctx) {
    const auto started = Clock::now();
    const auto* idv = ctx.args.if_contains("session_id");
    if (!idv || idv->is_null()) throw ToolError("missing required argument 'session_id' (from exec_command's output)");
    std::int64_t id = -1;
    if (idv->is_int64()) id = idv->as_int64();
    else if (idv->is_uint64()) id = static_cast<std::int64_t>(std::min<std::uint64_t>(idv->as_uint64(), INT64_MAX));
    else if (idv->is_double() && idv->as_double() == static_cast<double>(static_cast<std::int64_t>(idv->as_double())))
      id = static_cast<std::int64_t>(idv->as_double());
    else if (idv->is_string() && !idv->as_string().empty() &&
             std::string_view(idv->as_string()).find_first_not_of("0123456789") == std::string_view::npos &&
             idv->as_string().size() < 10)
      id = std::stoll(std::string(idv->as_string()));
    else
      throw ToolError("argument 'session_id' must be a session id number from exec_command's output");
    std::string chars;
    if (const auto* ch = ctx.args.if_contains("chars"); ch && !ch->is_null()) {
      if (!ch->is_string()) throw ToolError("argument 'chars' must be a string (may be empty to just read output)");
      chars = ch->as_string();
    }
    const auto yield = yield_time(ctx, kDefaultWriteYieldMs);
    const auto max_tokens = max_output_tokens(ctx);

    std::shared_ptr<Session> s;
    {
      std::lock_guard lock(mu_);
      auto it = sessions_.find(static_cast<int>(std::clamp<std::int64_t>(id, INT32_MIN, INT32_MAX)));
      if (it != sessions_.end() && it->second->owner == request_session(ctx)) s = it->second;
      if (s && s->busy) {
        ToolResult r;
        r.success = false;
        r.output = "write_stdin failed: session " + std::to_string(id) + " is in use by another call; try again.";
        return r;
      }
      if (s) {
        s->busy = true;
        s->streaming = true;
        s->last_used = Clock::now();
      }
    }
    if (!s) {
      ToolResult r;
      r.success = false;
      r.output = "write_stdin failed: Unknown session id " + std::to_string(id) +
                 ". It never existed, or its process exited and its final output was already returned. Start a new "
                 "process with exec_command.";
      return r;
    }

    std::string note;
    if (!chars.empty()) note = type_into(ctx, *s, chars, started + yield);
    DeltaStreamer streamer(ctx.call);
    Collected got = collect(ctx, s, started + yield, streamer);
    return finish(ctx, s, std::move(got), started, max_tokens, note);
  }

  // Writes `chars` to the terminal; a program that reads nothing can fill its input queue, so
  // this gives up at the deadline (or on cancellation) and says how much went in.
  std::string type_into(const ToolContext& ctx, const Session& s, const std::string& chars, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < chars.size()) {
      ssize_t n = ::write(s.master, chars.data() + done, chars.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (Clock::now() >= deadline || ctx.call.cancelled()) break;
        pollfd p{s.master, POLLOUT, 0};
        ::poll(&p, 1, 25);
        continue;
      }
      // EIO: nobody holds the terminal any more (the process is gone).
      return "Note: the input could not be written: the process no longer reads its terminal.";
    }
    if (done < chars.size())
      return "Note: only " + std::to_string(done) + " of " + std::to_string(chars.size()) +
             " bytes of input were written: the process is not reading its input.";
    return {};
  }

  // Waits until the deadline, the process's exit (and its last output), or cancellation,
  // streaming what arrives; then takes the session's unread output.
  Collected collect(const ToolContext& ctx, const std::shared_ptr<Session>& s, Clock::time_point deadline,
                    DeltaStreamer& streamer) {
    Collected got;
    std::unique_lock lock(mu_);
    for (;;) {
      if (!s->deltas.empty()) {
        std::string d;
        d.swap(s->deltas);
        lock.unlock();
        streamer.chunk(d);
        lock.lock();
        continue;
      }
      if (s->exited && s->eof) break;
      if (ctx.call.cancelled()) {
        got.cancelled = true;
        break;
      }
      auto now = Clock::now();
      if (now >= deadline) break;
      cv_.wait_until(lock, std::min(deadline, now + 25ms));
    }
    s->streaming = false;
    s->deltas.clear();
    got.output = std::move(s->pending);
    s->pending = keel::common::CappedBuffer(buffer_bytes_);
    got.exited = s->exited && s->eof;
    got.exit_code = s->exit_code;
    lock.unlock();
    streamer.flush();
    return got;
  }

  // Formats the reply and releases the session (removing it when its process is done).
  ToolResult finish(const ToolContext& ctx, const std::shared_ptr<Session>& s, Collected got, Clock::time_point started,
                    std::int64_t max_tokens, const std::string& note) {
    {
      std::lock_guard lock(mu_);
      s->busy = false;
      s->last_used = Clock::now();
      if (got.exited) close_session_locked(s);
    }
    const auto& buf = got.output;
    const std::string_view head = buf.head(), tail = buf.tail();
    const std::uint64_t max_bytes = static_cast<std::uint64_t>(max_tokens) * 4;
    constexpr std::size_t kAllLines = static_cast<std::size_t>(-1) / 4;
    auto model = keel::common::truncate_middle_info(
        head, tail, buf.dropped_bytes(), buf.dropped_lines(),
        {static_cast<std::size_t>(std::min<std::uint64_t>(max_bytes, SIZE_MAX / 4)), kAllLines});
    auto item_text = keel::common::truncate_middle(head, tail, buf.dropped_bytes(), buf.dropped_lines(),
                                                   {item_bytes_, kAllLines});
    std::optional<std::uint64_t> original_tokens;
    if (model.truncated()) original_tokens = (buf.total_bytes() + 3) / 4;

    // An interrupted exec_command has killed its process; an interrupted write_stdin has not.
    const bool killed = got.cancelled && !got.exited && ctx.call.capability() == "exec_command";
    std::string notes = note;
    if (got.cancelled) {
      if (!notes.empty()) notes += "\n";
      notes += got.exited  ? "Note: cancelled."
               : killed    ? "Note: cancelled; the process was killed."
                           : "Note: cancelled while waiting for output; the process is still running.";
    }
    std::optional<int> exit_code;
    std::optional<int> session_id;
    if (got.exited) exit_code = got.exit_code;
    else if (!killed) session_id = s->id;

    ToolResult r;
    r.output = header(started, exit_code, session_id, original_tokens, notes) + model.text;
    r.success = !got.cancelled && (!exit_code || *exit_code == 0);
    const bool running = session_id.has_value();
    r.item = json::object{{"type", "command_execution"},
                          {"command", s->command},
                          {"aggregated_output", keel::sdk::sanitize_utf8(item_text)},
                          {"exit_code", exit_code ? json::value(*exit_code) : json::value(nullptr)},
                          {"status", running ? "in_progress" : r.success ? "completed" : "failed"},
                          {"session_id", s->id},
                          {"pid", s->pid}};
    if (ctx.call.capability() == "write_stdin") {
      const auto* ch = ctx.args.if_contains("chars");
      r.item["stdin"] = ch && ch->is_string() ? keel::sdk::sanitize_utf8(ch->as_string()) : std::string();
    }
    // A sandboxed command that failed: if the sandbox blocked it, say why (as the shell tool does).
    if (exit_code && *exit_code != 0 && !got.cancelled && s->sandboxed) {
      sb::Explanation why = sb::explain(ctx.host, *s->sandboxed, *exit_code, keel::sdk::sanitize_utf8(item_text),
                                        sb::Wait::on(ctx.call));
      if (why.blocked) {
        r.output += "\n" + keel::sdk::sanitize_utf8(why.reason);
        r.item["sandbox_blocked"] = true;
        r.item["sandbox_reason"] = keel::sdk::sanitize_utf8(why.reason);
      }
    }
    if (got.cancelled) r.status = KEEL_ERR_CANCELLED;
    return r;
  }

  std::string header(Clock::time_point started, std::optional<int> exit_code, std::optional<int> session_id,
                     std::optional<std::uint64_t> original_tokens, const std::string& notes) {
    std::string chunk;
    {
      std::lock_guard lock(mu_);
      char buf[16];
      std::snprintf(buf, sizeof buf, "%06x", static_cast<unsigned>(rng_() & 0xFFFFFFu));
      chunk = buf;
    }
    std::string out = "Chunk ID: " + chunk + "\nWall time: " +
                      format_seconds(std::chrono::duration<double>(Clock::now() - started).count()) + " seconds\n";
    if (exit_code) out += "Process exited with code " + std::to_string(*exit_code) + "\n";
    if (session_id) out += "Process running with session ID " + std::to_string(*session_id) + "\n";
    if (original_tokens) out += "Original token count: " + std::to_string(*original_tokens) + "\n";
    if (!notes.empty()) out += notes + "\n";
    return out + "Output:\n";
  }

  // ---- arguments ----
  static std::chrono::milliseconds yield_time(const ToolContext& ctx, std::int64_t fallback) {
    std::int64_t ms = fallback;
    if (const auto* v = ctx.args.if_contains("yield_time_ms"); v && !v->is_null()) ms = ctx.int_arg_or("yield_time_ms", fallback);
    return std::chrono::milliseconds(std::clamp(ms, kMinYieldMs, kMaxYieldMs));
  }

  std::int64_t max_output_tokens(const ToolContext& ctx) const {
    std::int64_t n = default_tokens_;
    if (const auto* v = ctx.args.if_contains("max_output_tokens"); v && !v->is_null()) n = ctx.int_arg_or("max_output_tokens", n);
    return n > 0 ? std::min<std::int64_t>(n, INT64_MAX / 8) : default_tokens_;
  }

  static std::string request_session(const ToolContext& ctx) {
    const auto* v = ctx.request.if_contains("session_id");
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  }

  // The directory to run in: `workdir` (absolute, or relative to the request's cwd) or the cwd.
  static std::string resolve_workdir(const ToolContext& ctx) {
    fs::path base = ctx.cwd;
    if (base.empty()) {
      std::error_code ec;
      base = fs::current_path(ec);
    }
    const auto* w = ctx.args.if_contains("workdir");
    if (!w || w->is_null()) return base.string();
    if (!w->is_string()) throw ToolError("argument 'workdir' must be a string (a directory path)");
    fs::path p(std::string(w->as_string()));
    if (p.empty()) return base.string();
    if (p.is_relative()) p = base / p;
    return p.lexically_normal().string();
  }

  // ---- session bookkeeping (mu_ held) ----

  // The session to close for a new one: idle, not among the most recently used, one that
  // exited if any, else the least recently used.
  std::shared_ptr<Session> pick_victim() {
    std::vector<std::shared_ptr<Session>> all;
    for (auto& [id, s] : sessions_) all.push_back(s);
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a->last_used > b->last_used; });
    const std::size_t protect = std::min(kProtectedRecent, max_sessions_ > 1 ? max_sessions_ - 1 : 0);
    std::shared_ptr<Session> best;
    for (std::size_t i = std::min(protect, all.size()); i < all.size(); ++i) {
      const auto& s = all[i];
      if (s->busy) continue;
      if (!best || (s->exited && !best->exited) || (s->exited == best->exited && s->last_used < best->last_used)) best = s;
    }
    return best;
  }

  // Forgets a session and finishes off its processes (SIGHUP/SIGTERM now, SIGKILL after the
  // grace period, from the I/O thread).
  void close_session_locked(const std::shared_ptr<Session>& s) {
    auto it = sessions_.find(s->id);
    if (it == sessions_.end() || it->second != s) return;
    sessions_.erase(it);
    terminate_sessions({s->pid});
    doomed_.push_back({s->pid, Clock::now() + kill_grace_, s->exited});
    cv_.notify_all();
    wake();
  }

  void wake() {
    char c = 1;
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
  }

  // ---- the I/O thread: reads every terminal, notices exits, finishes off closed sessions --
  void io_loop() {
    std::vector<char> buf(64 * 1024);
    for (;;) {
      try {
        if (!io_round(buf)) return;
      } catch (...) {
        // Out of memory or similar: nothing may escape this thread; try again shortly.
        std::this_thread::sleep_for(10ms);
      }
    }
  }

  // One round of the I/O thread; false once the module is stopping.
  bool io_round(std::vector<char>& buf) {
    std::vector<std::shared_ptr<Session>> reading, waiting;  // masters to read; pidfds to watch
    int timeout = -1;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      for (auto& [id, s] : sessions_) {
        if (!s->eof) reading.push_back(s);
        if (!s->exited) {
          if (s->pidfd >= 0) waiting.push_back(s);
          else timeout = 25;  // no pidfd: poll with waitpid
        }
        if (s->exited && !s->eof) timeout = 25;
      }
      if (!doomed_.empty()) timeout = 25;
    }
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    for (auto& s : reading) fds.push_back({s->master, POLLIN, 0});
    for (auto& s : waiting) fds.push_back({s->pidfd, POLLIN, 0});
    int rc = ::poll(fds.data(), fds.size(), timeout);
    if (rc < 0 && errno != EINTR) std::this_thread::sleep_for(10ms);
    if (fds[0].revents & POLLIN)
      while (::read(wake_[0], buf.data(), buf.size()) > 0) {
      }

    // Read every terminal with something to say (outside the lock).
    std::vector<std::pair<std::shared_ptr<Session>, std::string>> got;
    std::vector<std::shared_ptr<Session>> ended;
    for (std::size_t i = 0; i < reading.size(); ++i) {
      if (!(fds[1 + i].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL))) continue;
      std::string data;
      bool eof = false;
      for (int rounds = 0; rounds < 16; ++rounds) {
        ssize_t n = ::read(reading[i]->master, buf.data(), buf.size());
        if (n > 0) {
          data.append(buf.data(), static_cast<std::size_t>(n));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        eof = true;  // 0 or EIO: the terminal has no one left on the other side
        break;
      }
      if (!data.empty()) got.emplace_back(reading[i], std::move(data));
      if (eof) ended.push_back(reading[i]);
    }

    std::lock_guard lock(mu_);
    if (stopping_) return false;
    bool changed = false;
    for (auto& [s, raw] : got) {
      // A PTY turns "\n" into "\r\n"; the model (and UIs) read plain lines. A "\r" at the end
      // of a read is held back until the next byte shows whether a "\n" follows.
      if (s->held_cr) raw.insert(0, 1, '\r');
      s->held_cr = !raw.empty() && raw.back() == '\r';
      if (s->held_cr) raw.pop_back();
      const std::string data = strip_cr(raw);
      s->pending.append(data);
      if (s->streaming && s->deltas.size() < kMaxDeltaBacklog)
        s->deltas.append(data, 0, std::min(data.size(), kMaxDeltaBacklog - s->deltas.size()));
      changed = true;
    }
    for (auto& s : ended) {
      s->eof = changed = true;
      if (s->held_cr) s->pending.append("\r");
      s->held_cr = false;
    }
    const auto now = Clock::now();
    for (auto& [id, s] : sessions_) {
      if (!s->exited) {
        int status = 0;
        pid_t r = ::waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid || (r < 0 && errno == ECHILD)) {
          s->exited = changed = true;
          s->exit_code = r == s->pid ? exit_code_of(status) : -1;
          s->exited_at = now;
          close_fd(s->pidfd);
        }
      }
      if (s->exited && !s->eof && now - s->exited_at >= kExitDrain) {
        s->eof = changed = true;
        if (s->held_cr) s->pending.append("\r");
        s->held_cr = false;
      }
    }
    for (auto it = doomed_.begin(); it != doomed_.end();) {
      if (!it->reaped) {
        int status = 0;
        pid_t r = ::waitpid(it->pid, &status, WNOHANG);
        it->reaped = r == it->pid || (r < 0 && errno == ECHILD);
      }
      if (now >= it->kill_at) {
        signal_sessions({it->pid}, SIGKILL);
        if (it->reaped) {
          it = doomed_.erase(it);
          continue;
        }
        it->kill_at = now + 100ms;  // not reaped yet: look again shortly
      }
      ++it;
    }
    if (changed) cv_.notify_all();
    return true;
  }

  // At module stop: every live session's processes get SIGHUP/SIGTERM, a grace period, then
  // SIGKILL; the leaders are reaped.
  void shutdown_all() {
    std::vector<pid_t> pids;
    std::set<pid_t> unreaped;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, s] : sessions_) {
        pids.push_back(s->pid);
        if (!s->exited) unreaped.insert(s->pid);
      }
      for (auto& d : doomed_) {
        pids.push_back(d.pid);
        if (!d.reaped) unreaped.insert(d.pid);
      }
    }
    if (pids.empty()) return;
    terminate_sessions(pids);
    auto reap = [&] {
      for (auto it = unreaped.begin(); it != unreaped.end();) {
        int status = 0;
        pid_t r = ::waitpid(*it, &status, WNOHANG);
        if (r == *it || (r < 0 && errno == ECHILD)) it = unreaped.erase(it);
        else ++it;
      }
    };
    const auto grace_end = Clock::now() + kill_grace_;
    for (reap(); !unreaped.empty() && Clock::now() < grace_end; reap()) std::this_thread::sleep_for(10ms);
    signal_sessions(pids, SIGKILL);
    const auto reap_end = Clock::now() + 2s;
    for (reap(); !unreaped.empty() && Clock::now() < reap_end; reap()) std::this_thread::sleep_for(5ms);
    std::lock_guard lock(mu_);
    sessions_.clear();
    doomed_.clear();
  }

  Host& host_;
  json::object config_;
  const std::size_t max_sessions_;
  const std::size_t buffer_bytes_;
  const std::size_t item_bytes_;
  std::int64_t default_tokens_;
  const std::chrono::milliseconds kill_grace_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::shared_ptr<Session>> sessions_;
  std::size_t reserved_ = 0;  // sessions being started
  int next_id_ = 1;
  std::vector<Doomed> doomed_;
  bool stopping_ = false;
  std::mt19937 rng_;
  int wake_[2] = {-1, -1};
  std::thread io_;
};

constexpr const char* kExecCommandSchema = R"({
  "type": "object",
  "properties": {
    "cmd": {"type": "string", "description": "Shell command to execute."},
    "workdir": {"type": "string", "description": "Optional working directory to run the command in; defaults to the turn cwd."},
    "shell": {"type": "string", "description": "Shell binary to launch. Defaults to the user's default shell."},
    "login": {"type": "boolean", "description": "Whether to run the shell with -l/-i semantics. Defaults to true."},
    "yield_time_ms": {"type": "number", "description": "How long to wait (in milliseconds) for output before yielding (default 10000, 250..30000)."},
    "max_output_tokens": {"type": "number", "description": "Maximum number of tokens to return. Excess output will be truncated."}
  },
  "required": ["cmd"],
  "additionalProperties": false
})";

constexpr const char* kWriteStdinSchema = R"({
  "type": "object",
  "properties": {
    "session_id": {"type": "number", "description": "Identifier of the running unified exec session."},
    "chars": {"type": "string", "description": "Bytes to write to stdin (may be empty to poll)."},
    "yield_time_ms": {"type": "number", "description": "How long to wait (in milliseconds) for output before yielding (default 250, 250..30000)."},
    "max_output_tokens": {"type": "number", "description": "Maximum number of tokens to return. Excess output will be truncated."}
  },
  "required": ["session_id"],
  "additionalProperties": false
})";

const keel_capability kCapabilities[] = {
    {KEEL_CAP_TOOL, KEEL_FLAG_MUTATING, "exec_command",
     "Runs a command in a PTY, returning output or a session ID for ongoing interaction.", kExecCommandSchema},
    {KEEL_CAP_TOOL, KEEL_FLAG_MUTATING, "write_stdin",
     "Writes characters to an existing unified exec session and returns recent output.", kWriteStdinSchema},
};

}  // namespace

KEEL_MODULE(UnifiedExec, "unified-exec", "0.1.0",
            "Interactive processes in a pseudo-terminal: exec_command and write_stdin (Codex's unified exec)",
            kCapabilities)
