// Process runner. See include/keel/common/process.hpp.
//
// Why posix_spawn and not fork/exec: keel is a multi-threaded host (bus threads, provider
// streams, other tools running in parallel). After fork() in a threaded process only
// async-signal-safe calls are allowed until exec, and fork copies the page tables of a
// possibly large process. glibc's posix_spawn uses clone(CLONE_VM | CLONE_VFORK): no copy, no
// code of ours running in the child, and exec errors (ENOENT, EACCES, a failed chdir) come
// back as the return value instead of through a hand-made error pipe. Everything we need in
// the child is available as spawn attributes (glibc >= 2.34, Debian 12 has 2.36):
// POSIX_SPAWN_SETSID (own session and process group, no controlling terminal, so a command
// can never block on /dev/tty), signal mask and dispositions reset, addchdir_np (working
// directory) and addclosefrom_np (no descriptor of the host leaks into the command).
// What posix_spawn cannot do is PR_SET_PDEATHSIG; a crashed host leaves its running command
// behind, which is acceptable for commands bounded by a timeout.
#include <keel/common/process.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace keel::common {

// ---------------------------------------------------------------------------------------------
// CappedBuffer

CappedBuffer::CappedBuffer(std::size_t max_bytes) : head_cap_(max_bytes / 2), tail_cap_(max_bytes - max_bytes / 2) {}

namespace {
std::uint64_t newlines(std::string_view s) { return static_cast<std::uint64_t>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

void CappedBuffer::append(std::string_view data) {
  if (data.empty()) return;
  total_bytes_ += data.size();
  total_newlines_ += newlines(data);
  last_byte_ = data.back();

  if (head_.size() < head_cap_) {
    std::size_t take = std::min(head_cap_ - head_.size(), data.size());
    if (head_.empty()) head_.reserve(std::min(head_cap_, std::max<std::size_t>(take, 4096)));
    head_.append(data.substr(0, take));
    data.remove_prefix(take);
  }
  if (data.empty()) return;
  if (tail_cap_ == 0) {
    dropped_bytes_ += data.size();
    dropped_newlines_ += newlines(data);
    return;
  }
  if (data.size() >= tail_cap_) {
    // Everything held in the tail so far, and the front of this chunk, falls out.
    std::string_view front = data.substr(0, data.size() - tail_cap_);
    dropped_bytes_ += tail_.size() + front.size();
    dropped_newlines_ += newlines(tail_) + newlines(front);
    tail_.assign(data.substr(data.size() - tail_cap_));
    return;
  }
  tail_.append(data);
  if (tail_.size() > 2 * tail_cap_) {
    // Erase in bulk (amortised O(1) per byte); tail() hides the excess below tail_cap_.
    std::size_t erase = tail_.size() - tail_cap_;
    dropped_bytes_ += erase;
    dropped_newlines_ += newlines(std::string_view(tail_).substr(0, erase));
    tail_.erase(0, erase);
  }
}

std::string_view CappedBuffer::tail() const {
  std::string_view t = tail_;
  return t.size() > tail_cap_ ? t.substr(t.size() - tail_cap_) : t;
}

std::uint64_t CappedBuffer::dropped_bytes() const { return dropped_bytes_ + (tail_.size() - tail().size()); }

std::uint64_t CappedBuffer::dropped_lines() const {
  return dropped_newlines_ + newlines(std::string_view(tail_).substr(0, tail_.size() - tail().size()));
}

std::uint64_t CappedBuffer::total_lines() const {
  return total_newlines_ + ((total_bytes_ != 0 && last_byte_ != '\n') ? 1 : 0);
}

std::string CappedBuffer::str() const {
  std::string out;
  auto t = tail();
  out.reserve(head_.size() + t.size());
  out.append(head_).append(t);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string default_path() {
  std::size_t n = ::confstr(_CS_PATH, nullptr, 0);
  if (n == 0) return "/bin:/usr/bin";
  std::string s(n, '\0');
  ::confstr(_CS_PATH, s.data(), n);
  s.resize(n - 1);
  return s;
}

// PATH lookup; relative entries ("" means ".") are taken relative to base_dir when given.
std::optional<std::string> search_path(std::string_view name, std::string_view path, const std::string& base_dir) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    std::string p(name);
    if (p[0] != '/' && !base_dir.empty()) p = base_dir + "/" + p;
    return is_executable_file(p) ? std::optional<std::string>(std::string(name)) : std::nullopt;
  }
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t colon = path.find(':', pos);
    if (colon == std::string_view::npos) colon = path.size();
    std::string dir(path.substr(pos, colon - pos));
    pos = colon + 1;
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + std::string(name);
    std::string check = candidate;
    if (dir[0] != '/' && !base_dir.empty()) check = base_dir + "/" + candidate;
    if (is_executable_file(check)) return check;
  }
  return std::nullopt;
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

// Owns the posix_spawn objects so every exit path destroys them.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Blocks SIGPIPE on this thread while we write the child's stdin, so a child that exits
// without reading makes write() fail with EPIPE instead of killing the host. A SIGPIPE that
// became pending meanwhile is consumed before the old mask is restored.
class SigpipeGuard {
 public:
  explicit SigpipeGuard(bool active) : active_(active) {
    if (!active_) return;
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  ~SigpipeGuard() {
    if (!active_) return;
    if (!was_pending_) {
      sigset_t pipe_set;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      struct timespec zero {};
      while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  bool active_;
  bool was_pending_ = false;
  sigset_t old_{};
};

ProcessResult failed(ProcessResult r, int exit_code, std::string message,
                     std::chrono::steady_clock::time_point started) {
  r.exit_code = exit_code;
  r.spawned = false;
  r.error = std::move(message);
  r.wall_time = std::chrono::steady_clock::now() - started;
  return r;
}

}  // namespace

std::optional<std::string> find_on_path(std::string_view name, std::optional<std::string_view> path_env) {
  std::string path;
  if (path_env) path = std::string(*path_env);
  else if (const char* p = std::getenv("PATH")) path = p;
  else path = default_path();
  return search_path(name, path, {});
}

std::string shell_quote(std::string_view word) {
  if (word.empty()) return "''";
  bool safe = std::all_of(word.begin(), word.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::strchr("@%+=:,./-_", c) != nullptr;
  });
  if (safe) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out += "'\"'\"'";
    else out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out.push_back(' ');
    out += shell_quote(a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// run_process

ProcessResult run_process(const ProcessOptions& options) {
  using clock = std::chrono::steady_clock;
  const auto started = clock::now();
  ProcessResult r;
  r.stdout_buf = CappedBuffer(options.max_output_bytes);
  r.stderr_buf = CappedBuffer(options.max_output_bytes);
  r.aggregated = CappedBuffer(options.max_output_bytes);

  if (options.argv.empty() || options.argv[0].empty()) return failed(std::move(r), 127, "no command given", started);

  if (!options.cwd.empty()) {
    struct stat st {};
    if (::stat(options.cwd.c_str(), &st) != 0)
      return failed(std::move(r), 127,
                    "working directory " + options.cwd +
                        (errno == ENOENT ? " does not exist" : ": " + std::string(std::strerror(errno))),
                    started);
    if (!S_ISDIR(st.st_mode))
      return failed(std::move(r), 127, "working directory " + options.cwd + " is not a directory", started);
  }

  // The child's environment: inherited, minus removals, plus overrides.
  std::map<std::string, std::string> env;
  if (options.inherit_env && environ) {
    for (char** e = environ; *e; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq == std::string_view::npos || eq == 0) continue;
      env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
  }
  for (const auto& k : options.env_remove) env.erase(k);
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env.size());
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  // Resolve the program on the *child's* PATH (posix_spawnp would use ours).
  const std::string& name = options.argv[0];
  std::string program = name;
  if (name.find('/') == std::string::npos) {
    auto it = env.find("PATH");
    auto found = search_path(name, it != env.end() ? it->second : default_path(), options.cwd);
    if (!found) return failed(std::move(r), 127, "command not found: " + name, started);
    program = *found;
  }

  std::vector<std::string> argv_copy = options.argv;
  std::vector<char*> argv;
  argv.reserve(argv_copy.size() + 1);
  for (auto& a : argv_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, in_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1], &in_pipe[0], &in_pipe[1]}) close_fd(*fd);
  };
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    close_all();
    return failed(std::move(r), 126, std::string("cannot create pipes: ") + std::strerror(e), started);
  }
  if (options.stdin_data) {
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
      int e = errno;
      close_all();
      return failed(std::move(r), 126, std::string("cannot create pipes: ") + std::strerror(e), started);
    }
  } else {
    in_pipe[0] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_pipe[0] < 0) {
      int e = errno;
      close_all();
      return failed(std::move(r), 126, std::string("cannot open /dev/null: ") + std::strerror(e), started);
    }
  }

  pid_t pid = -1;
  int spawn_rc = 0;
  {
    SpawnSetup s;
    posix_spawn_file_actions_adddup2(&s.actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&s.actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&s.actions, err_pipe[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
    if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&s.actions, options.cwd.c_str());

    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&s.attr, &none);
    posix_spawnattr_setsigdefault(&s.attr, &all);
    posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    spawn_rc = ::posix_spawn(&pid, program.c_str(), &s.actions, &s.attr, argv.data(), envp.data());
  }
  close_fd(in_pipe[0]);
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  if (spawn_rc != 0) {
    close_all();
    if (spawn_rc == ENOENT)
      return failed(std::move(r), 127,
                    (name.find('/') == std::string::npos ? "command not found: " : "no such file: ") + name, started);
    return failed(std::move(r), 126, "cannot execute " + name + ": " + std::strerror(spawn_rc), started);
  }
  r.spawned = true;
  r.pid = pid;

  int out_fd = out_pipe[0], err_fd = err_pipe[0], in_fd = in_pipe[1];
  set_nonblocking(out_fd);
  set_nonblocking(err_fd);
  if (in_fd >= 0) set_nonblocking(in_fd);
  int pidfd = open_pidfd(pid);
  SigpipeGuard sigpipe_guard(in_fd >= 0);

  const std::string_view stdin_data = options.stdin_data ? std::string_view(*options.stdin_data) : std::string_view{};
  std::size_t stdin_written = 0;
  if (in_fd >= 0 && stdin_data.empty()) close_fd(in_fd);

  auto on_output = options.on_output;
  auto deliver = [&](OutputStream which, std::string_view chunk) {
    (which == OutputStream::Stdout ? r.stdout_buf : r.stderr_buf).append(chunk);
    r.aggregated.append(chunk);
    if (on_output) {
      try {
        on_output(which, chunk);
      } catch (...) {
        on_output = nullptr;  // a broken callback must not leave the child unreaped
      }
    }
  };
  auto is_cancelled = [&]() -> bool {
    if (options.cancel_flag && options.cancel_flag->load()) return true;
    if (!options.cancelled) return false;
    try {
      return options.cancelled();
    } catch (...) {
      return true;
    }
  };

  enum class Phase { Running, Terminating, Killed } phase = Phase::Running;
  clock::time_point term_at{}, drain_deadline{};
  bool drain_started = false;
  bool exited = false;
  // Timeouts beyond ~30 years count as none (and cannot overflow the clock arithmetic).
  const auto deadline = options.timeout && *options.timeout < std::chrono::hours(24 * 365 * 30)
                            ? started + std::max(*options.timeout, std::chrono::milliseconds(0))
                            : clock::time_point::max();
  const auto poll_interval = std::max(options.poll_interval, std::chrono::milliseconds(1));
  bool reaped_elsewhere = false;

  // Exit is observed with WNOWAIT: the leader stays a zombie (so its pid, which is the process
  // group id, cannot be reused) until the group has been killed, and is reaped at the end.
  auto check_exit = [&] {
    siginfo_t info{};
    int rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && info.si_pid == pid) exited = true;
    if (rc < 0 && errno == ECHILD) {
      // Someone else reaped it (SIGCHLD set to SIG_IGN, or a waitpid(-1) elsewhere).
      exited = true;
      reaped_elsewhere = true;
    }
  };
  // Once the leader is reaped its pid may be reused, so -pid could name a stranger's group.
  auto signal_group = [&](int sig) {
    if (!reaped_elsewhere) ::kill(-pid, sig);
  };

  static constexpr std::size_t kChunk = 64 * 1024;
  std::string buffer(kChunk, '\0');
  auto read_some = [&](int& fd, OutputStream which) {
    // Bounded per wake-up so a firehose cannot starve the timeout and cancellation checks.
    for (int i = 0; i < 16 && fd >= 0; ++i) {
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n > 0) {
        deliver(which, std::string_view(buffer.data(), static_cast<std::size_t>(n)));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      close_fd(fd);  // EOF or error
    }
  };

  for (;;) {
    if (!exited) check_exit();
    const bool pipes_open = out_fd >= 0 || err_fd >= 0;
    if (exited && !pipes_open) break;
    auto now = clock::now();

    if (phase == Phase::Running && !exited) {
      if (is_cancelled()) {
        r.cancelled = true;
      } else if (now >= deadline) {
        r.timed_out = true;
      }
      if (r.cancelled || r.timed_out) {
        signal_group(SIGTERM);
        signal_group(SIGCONT);  // a stopped process cannot act on SIGTERM
        phase = Phase::Terminating;
        term_at = now;
      }
    }
    if (phase == Phase::Terminating && now >= term_at + options.kill_grace) {
      signal_group(SIGKILL);
      phase = Phase::Killed;
    }
    if (exited && pipes_open) {
      // Only grandchildren (or processes that left the group) still hold the pipes.
      if (!drain_started) {
        drain_started = true;
        drain_deadline = now + (phase == Phase::Running ? options.drain_timeout : options.kill_grace);
      }
      if (now >= drain_deadline) break;
    }

    // How long poll() may sleep.
    auto wake = now + poll_interval;
    if (phase == Phase::Running && !exited) wake = std::min(wake, deadline);
    if (phase == Phase::Terminating) wake = std::min(wake, term_at + options.kill_grace);
    if (drain_started) wake = std::min(wake, drain_deadline);
    auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
    if (wait_ms < 0) wait_ms = 0;

    pollfd fds[4];
    nfds_t nfds = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_fd >= 0) { out_i = static_cast<int>(nfds); fds[nfds++] = {out_fd, POLLIN, 0}; }
    if (err_fd >= 0) { err_i = static_cast<int>(nfds); fds[nfds++] = {err_fd, POLLIN, 0}; }
    if (in_fd >= 0) { in_i = static_cast<int>(nfds); fds[nfds++] = {in_fd, POLLOUT, 0}; }
    if (pidfd >= 0 && !exited) fds[nfds++] = {pidfd, POLLIN, 0};

    int rc = ::poll(fds, nfds, static_cast<int>(wait_ms));
    if (rc < 0 && errno != EINTR) {
      // Should not happen; fall back to sleeping one interval so we never spin.
      ::usleep(static_cast<useconds_t>(std::chrono::duration_cast<std::chrono::microseconds>(poll_interval).count()));
      continue;
    }
    if (rc <= 0) continue;
    if (out_i >= 0 && fds[out_i].revents) read_some(out_fd, OutputStream::Stdout);
    if (err_i >= 0 && fds[err_i].revents) read_some(err_fd, OutputStream::Stderr);
    if (in_i >= 0 && fds[in_i].revents) {
      if (fds[in_i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        close_fd(in_fd);
      } else {
        ssize_t n = ::write(in_fd, stdin_data.data() + stdin_written, stdin_data.size() - stdin_written);
        if (n > 0) stdin_written += static_cast<std::size_t>(n);
        else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) close_fd(in_fd);
        if (stdin_written >= stdin_data.size()) close_fd(in_fd);
      }
    }
  }

  // Whatever is left of a group we started to terminate gets SIGKILL now (the leader is still
  // an unreaped zombie, so -pid cannot name anybody else's group).
  if (phase == Phase::Terminating) signal_group(SIGKILL);
  close_fd(out_fd);
  close_fd(err_fd);
  close_fd(in_fd);
  if (pidfd >= 0) ::close(pidfd);

  int status = 0;
  pid_t waited = -1;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited < 0 || reaped_elsewhere) {
    r.exit_code = -1;
    r.error = "the exit status of the command was lost (its process was reaped elsewhere)";
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.term_signal = WTERMSIG(status);
    r.exit_code = 128 + r.term_signal;
  }
  r.wall_time = clock::now() - started;
  return r;
}

}  // namespace keel::common
