// Shared by the session tests: a scratch tree (KEEL_HOME copied from the build-tree home,
// a workspace, a fake $HOME) outside the temp dirs the sandboxes make writable, replay
// scripts, a recorder of bus events, a spying provider that forwards to the replay module,
// and real child processes (the `keel` binary) with time limits and clean-up.
#pragma once

#include <keel/kernel/kernel.hpp>

#include "proc_files.hpp"
#include "scratch_dir.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace keel::session_test {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

inline const fs::path kBuildDir = KEEL_BINARY_DIR;
inline const fs::path kBuildHome = kBuildDir / "keel-home";
inline const fs::path kKeelExe = KEEL_EXE;

// ---- small helpers ------------------------------------------------------------------------

inline std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

inline bool contains(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& p, const std::string& text) {
  if (!p.parent_path().empty()) fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

inline json::object parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return !ec && v.is_object() ? std::move(v.as_object()) : json::object{};
}

// A JSON string literal (for building script lines and -c values).
inline std::string jstr(const std::string& s) { return json::serialize(json::value(s)); }

// The text of a message item.
inline std::string message_text(const json::object& item) {
  std::string text;
  if (auto* c = item.if_contains("content"); c && c->is_array())
    for (auto& part : c->as_array())
      if (part.is_object()) text += str(part.as_object(), "text");
  return text;
}

inline std::string dump(const json::array& items) {
  std::string s;
  for (auto& v : items) s += json::serialize(v) + "\n";
  return s;
}

inline std::string dump(const std::vector<json::object>& items) {
  std::string s;
  for (auto& v : items) s += json::serialize(v) + "\n";
  return s;
}

// Items of `history` of one type (and role, for messages).
inline std::vector<json::object> items_of(const json::array& history, const std::string& type, const std::string& role = "") {
  std::vector<json::object> out;
  for (auto& v : history)
    if (v.is_object() && str(v.as_object(), "type") == type && (role.empty() || str(v.as_object(), "role") == role))
      out.push_back(v.as_object());
  return out;
}

// The output recorded for a call id (function or custom tool), if any.
inline std::optional<std::string> output_of(const json::array& history, const std::string& call_id) {
  for (auto& v : history) {
    if (!v.is_object()) continue;
    auto& o = v.as_object();
    auto type = str(o, "type");
    if ((type == "function_call_output" || type == "custom_tool_call_output") && str(o, "call_id") == call_id)
      return str(o, "output");
  }
  return std::nullopt;
}

using keel::test::read_proc_file;  // read(2): a process may exit mid-read (proc_files.hpp)

// The state letter and process group of a process, from /proc/<pid>/stat (0 if it is gone).
inline std::pair<char, pid_t> proc_state(pid_t pid) {
  std::string all = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = all.rfind(')');
  if (close == std::string::npos || close + 2 >= all.size()) return {0, 0};
  std::istringstream rest(all.substr(close + 2));
  char state = 0;
  long ppid = 0, pgrp = 0;
  rest >> state >> ppid >> pgrp;
  return {state, static_cast<pid_t>(pgrp)};
}

// Whether a process group still has a member that is not a zombie (an orphaned zombie waits
// for init to reap it, which may take a while and is no sign of a process left running).
inline bool pid_group_alive(pid_t pgid) {
  if (::kill(-pgid, 0) != 0 && errno != EPERM) return false;
  DIR* d = ::opendir("/proc");
  if (!d) return true;
  bool alive = false;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end || pid <= 0) continue;
    auto [state, pgrp] = proc_state(static_cast<pid_t>(pid));
    if (pgrp == pgid && state != 'Z' && state != 0) alive = true;
  }
  ::closedir(d);
  return alive;
}
inline bool pid_alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == EPERM;
  auto state = proc_state(pid).first;  // a zombie still answers kill(0)
  return state != 'Z' && state != 0;
}

// Waits until `pred` holds (polling), up to `timeout`.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout, std::chrono::milliseconds step = 10ms) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

inline std::int64_t read_pid(const fs::path& file) {
  auto text = read_file(file);
  try {
    return text.empty() ? 0 : std::stoll(text);
  } catch (const std::exception&) {
    return 0;
  }
}

// Kills a process group a test command left behind (a test never leaves processes running).
inline void reap_group(pid_t pgid) {
  if (pgid > 1 && pid_group_alive(pgid)) ::kill(-pgid, SIGKILL);
}

// Processes (any namespace) whose command line holds `marker` as one argument.
inline std::vector<pid_t> processes_with_arg(const std::string& marker) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end || pid <= 0) continue;
    auto cmdline = read_proc_file(fs::path("/proc") / e->d_name / "cmdline");
    std::size_t start = 0;
    while (start < cmdline.size()) {
      auto stop = cmdline.find('\0', start);
      if (stop == std::string::npos) stop = cmdline.size();
      if (cmdline.compare(start, stop - start, marker) == 0 && pid_alive(static_cast<pid_t>(pid))) {
        out.push_back(static_cast<pid_t>(pid));
        break;
      }
      start = stop + 1;
    }
  }
  ::closedir(d);
  return out;
}

inline void kill_marked(const std::string& marker) {
  for (auto pid : processes_with_arg(marker)) ::kill(pid, SIGKILL);
}

// ---- the scratch tree -----------------------------------------------------------------------

// base/ (under the build tree: not in /tmp or $TMPDIR, which workspace-write makes writable)
//   keel-home/   modules/ and trusted_keys/ copied from the build-tree home
//   ws/          the workspace (a project root: it holds .git)
//   home/        a fake $HOME
//   outside/     a folder no policy makes writable
//   scripts/     replay scripts
class Scratch {
 public:
  explicit Scratch(const std::string& tag = "session") {
    fs::path root = keel::test::scratch_parent() / "keel-session-scratch";
    fs::create_directories(root);
    std::string tmpl = (root / (tag + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + root.string());
    base = fs::canonical(tmpl);
    home = base / "keel-home";
    ws = base / "ws";
    fake_home = base / "home";
    outside = base / "outside";
    scripts = base / "scripts";
    fs::create_directories(ws / ".git");
    write_file(ws / ".git" / "HEAD", "ref: refs/heads/main\n");
    fs::create_directories(fake_home);
    fs::create_directories(outside);
    fs::create_directories(scripts);
    copy_home(home);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Copies the first-party modules and the build key into `dest` (a fresh KEEL_HOME).
  static void copy_home(const fs::path& dest) {
    INFO("the build-tree home " << kBuildHome.string());
    REQUIRE(fs::is_directory(kBuildHome / "modules"));
    fs::create_directories(dest);
    fs::copy(kBuildHome / "modules", dest / "modules", fs::copy_options::recursive);
    fs::copy(kBuildHome / "trusted_keys", dest / "trusted_keys", fs::copy_options::recursive);
  }

  // Writes a replay script (one response a line) and returns its absolute path.
  fs::path script(const std::string& name, const std::vector<std::string>& responses) const {
    std::string text;
    for (auto& r : responses) text += r + "\n";
    fs::path p = scripts / name;
    write_file(p, text);
    return p;
  }

  // An embedding configuration: replay provider with `script`, files not read.
  Config config(const fs::path& script, const std::vector<std::string>& extra = {}) const {
    ConfigSources src;
    src.keel_home = home;
    src.cwd = ws;
    src.read_files = false;
    src.overrides = {"model_provider=\"replay\"", "model_providers.replay.script=" + jstr(script.string())};
    for (auto& e : extra) src.overrides.push_back(e);
    return Config::load(src);
  }

  // A configuration whose provider is the spy (see ProviderSpy) replaying `script`.
  Config spy_config(const fs::path& script, const std::vector<std::string>& extra = {}) const {
    ConfigSources src;
    src.keel_home = home;
    src.cwd = ws;
    src.read_files = false;
    src.overrides = {"model_provider=\"spy\"", "model_providers.spy.module=\"spy\"",
                     "model_providers.spy.script=" + jstr(script.string())};
    for (auto& e : extra) src.overrides.push_back(e);
    return Config::load(src);
  }

  // Every rollout file under $KEEL_HOME/sessions.
  std::vector<fs::path> rollouts() const {
    std::vector<fs::path> out;
    std::error_code ec;
    if (!fs::exists(home / "sessions", ec)) return out;
    for (auto& e : fs::recursive_directory_iterator(home / "sessions"))
      if (e.is_regular_file() && e.path().extension() == ".jsonl") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
  }
  std::optional<fs::path> rollout_of(const std::string& session_id) const {
    for (auto& p : rollouts())
      if (contains(p.filename().string(), session_id)) return p;
    return std::nullopt;
  }

  fs::path base, home, ws, fake_home, outside, scripts;
};

// The history a rollout file holds (item records; a compaction replaces what came before).
inline json::array rollout_items(const fs::path& file) {
  json::array items;
  for (auto& line : lines_of(read_file(file))) {
    auto rec = parse_object(line);
    auto type = str(rec, "type");
    if (type == "item" && rec.contains("item")) items.push_back(rec.at("item"));
    if (type == "compaction" && rec.contains("replacement_history") && rec.at("replacement_history").is_array())
      items = rec.at("replacement_history").as_array();
  }
  return items;
}

// ---- events -------------------------------------------------------------------------------

// Every event published on "event", in delivery order.
struct Recorder {
  std::mutex mu;
  std::vector<json::object> events;
  void operator()(const Event& e) {
    std::lock_guard lock(mu);
    events.push_back(e.body());
  }
  std::vector<json::object> snapshot() {
    std::lock_guard lock(mu);
    return events;
  }
  std::vector<json::object> of_type(const std::string& type) {
    std::vector<json::object> out;
    for (auto& e : snapshot())
      if (str(e, "type") == type) out.push_back(e);
    return out;
  }
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds timeout = 10s) {
    return eventually(
        [&] {
          std::lock_guard lock(mu);
          for (auto& e : events)
            if (pred(e)) return true;
          return false;
        },
        timeout, 5ms);
  }
  std::string text() { return dump(snapshot()); }
};

// Subscribes a recorder for the lifetime of this object.
struct Recording {
  Kernel& kernel;
  std::shared_ptr<Recorder> rec = std::make_shared<Recorder>();
  std::uint64_t sub;
  explicit Recording(Kernel& k) : kernel(k) {
    auto r = rec;
    sub = kernel.subscribe("event", [r](const Event& e) { (*r)(e); });
  }
  ~Recording() { kernel.unsubscribe(sub); }
  Recorder* operator->() { return rec.get(); }
};

// Waits for a turn's result. Then lets the session's worker thread finish: a submit() that
// comes while the worker is still between answering its waiters and exiting deadlocks
// (Kernel::Impl::submit joins the worker while holding Session::mu, which run_turns takes once
// more after the waiters ran; see "back-to-back turns" in turn_loop_test.cpp). The pause keeps
// the other tests about what they test.
inline TurnResult wait_turn(std::future<TurnResult>& f, std::chrono::seconds limit = 30s) {
  REQUIRE(f.wait_for(limit) == std::future_status::ready);
  auto r = f.get();
  std::this_thread::sleep_for(50ms);
  return r;
}

// Runs `body` in a forked child, so that a hang cannot take the whole test run with it.
// Returns the child's exit code, or -1 if it was killed at `limit` (or died of a signal).
// Call it only while this process runs no other threads (no Kernel alive).
inline int run_forked(const std::function<int()>& body, std::chrono::milliseconds limit) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int code = 3;
    try {
      code = body();
    } catch (...) {
      code = 2;
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  auto deadline = Clock::now() + limit;
  int status = 0;
  for (;;) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(10ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
inline TurnResult wait_turn(std::future<TurnResult>&& f, std::chrono::seconds limit = 30s) { return wait_turn(f, limit); }

// ---- a provider that records every request and forwards it to the replay module ------------

struct ProviderSpy {
  std::mutex mu;
  std::vector<json::object> requests;
  std::function<void(std::size_t index)> before;  // runs before request `index` is forwarded

  // Serves "provider.spy"; the session's provider must be `spy` (Scratch::spy_config).
  void install(Kernel& k) {
    REQUIRE(k.modules().ensure_loaded("replay"));
    Bus* bus = &k.bus();
    k.bus().serve("provider.spy", [this, bus](const RequestPtr& req) {
      std::size_t index;
      {
        std::lock_guard lock(mu);
        index = requests.size();
        requests.push_back(parse_object(req->payload()));
      }
      if (before) before(index);
      bus->request(
          "provider.replay." + req->method(), req->payload(), [req](std::string_view e) { req->emit(e); },
          [req](int status, std::string_view body) { req->reply(status, body); });
    });
  }
  std::vector<json::object> snapshot() {
    std::lock_guard lock(mu);
    return requests;
  }
  static std::set<std::string> tool_names(const json::object& request) {
    std::set<std::string> out;
    if (auto* t = request.if_contains("tools"); t && t->is_array())
      for (auto& spec : t->as_array())
        if (spec.is_object()) out.insert(str(spec.as_object(), "name"));
    return out;
  }
  static json::array input(const json::object& request) {
    auto* in = request.if_contains("input");
    return in && in->is_array() ? in->as_array() : json::array{};
  }
};

// ---- child processes ----------------------------------------------------------------------

struct RunResult {
  int exit_code = -1;  // -1: killed or timed out
  bool timed_out = false;
  std::string out, err;
  std::string describe() const {
    return "exit " + std::to_string(exit_code) + (timed_out ? " (timed out)" : "") + "\nstdout:\n" + out +
           "\nstderr:\n" + err;
  }
};

// A child process in its own process group, stdin from /dev/null, stdout and stderr to files.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env_overrides,
        const fs::path& cwd, const fs::path& io_dir) {
    static std::atomic<int> counter{0};
    int n = counter++;
    out_path_ = io_dir / ("child-" + std::to_string(n) + ".out");
    err_path_ = io_dir / ("child-" + std::to_string(n) + ".err");
    fs::create_directories(io_dir);

    std::map<std::string, std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto eq = kv.find('=');
      if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (auto& [k, v] : env_overrides) env[k] = v;
    std::vector<std::string> env_strings;
    for (auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, args;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_copy = argv;
    for (auto& a : argv_copy) args.push_back(a.data());
    args.push_back(nullptr);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = posix_spawn(&pid_, args[0], &fa, &attr, args.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }

  // Waits for the child to exit, up to `limit`; on timeout kills its process group.
  RunResult wait(std::chrono::milliseconds limit) {
    RunResult r;
    auto deadline = Clock::now() + limit;
    int status = 0;
    for (;;) {
      pid_t got = ::waitpid(pid_, &status, WNOHANG);
      if (got == pid_) break;
      if (Clock::now() >= deadline) {
        r.timed_out = true;
        ::kill(-pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    reaped_ = true;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = out();
    r.err = err();
    return r;
  }
  void kill9() { ::kill(pid_, SIGKILL); }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  fs::path out_path_, err_path_;
};

// Runs the real keel with KEEL_HOME and HOME of the scratch tree, in `cwd` (default: the workspace).
inline RunResult run_keel(const Scratch& s, const std::vector<std::string>& args, std::chrono::milliseconds limit = 40s,
                          fs::path cwd = {}, std::map<std::string, std::string> env = {}) {
  std::vector<std::string> argv{kKeelExe.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  env.emplace("KEEL_HOME", s.home.string());
  env.emplace("HOME", s.fake_home.string());
  env.emplace("KEEL_LOG", "warn");
  Child c(argv, env, cwd.empty() ? s.ws : cwd, s.base / "io");
  return c.wait(limit);
}

// The events `keel exec --json` printed.
inline std::vector<json::object> jsonl(const std::string& out) {
  std::vector<json::object> events;
  for (auto& l : lines_of(out)) {
    auto o = parse_object(l);
    if (!o.empty()) events.push_back(std::move(o));
  }
  return events;
}

// ---- a TCP listener on 127.0.0.1 that counts (and greets) connections ---------------------

class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("bind/listen failed");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++connections_;
      const char hello[] = "hello-from-listener\n";
      (void)!::write(c, hello, sizeof hello - 1);
      ::close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace keel::session_test
