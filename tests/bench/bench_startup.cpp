// Start-up (targets: ≤ 30 ms from process start to the first provider request with every
// first-party module verified and loaded; ≤ 2 ms verify + load per module):
//  - verify + load of every first-party module, from 31 in-process boots (each module loaded,
//    deferred ones too); KEEL_BENCH_DETAIL=1 also prints verify and load separately;
//  - a kernel boot with the default configuration (deferred modules stay deferred);
//  - fresh processes: fork+exec of /bin/true (the floor), `keel --version` (dynamic loading of
//    keel's libraries — Poco, OpenSSL, Boost, libarchive... — and static initialisation, no
//    kernel), `keel exec` until its first request arrives at a loopback listener (the real
//    "first provider request"), and a whole `keel exec --replay` run (an upper bound) — each
//    with `-s danger-full-access` and with the default workspace-write sandbox (bwrap).
#include "bench_kernel.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

namespace keel::bench {

namespace {

constexpr int kRuns = 31;

// fork + exec with stdin, stdout and stderr on /dev/null and KEEL_HOME set; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& home) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!home.empty()) ::setenv("KEEL_HOME", home.c_str(), 1);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A TCP listener on 127.0.0.1 that notes when the first bytes of a request arrive.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd_); }
  int port() const { return port_; }

  // Drops connections left over from an earlier run.
  void drain() {
    pollfd p{fd_, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) break;
      ::close(c);
    }
  }

  // Waits (up to timeout_ms) for a connection and its first bytes; returns when they came and
  // the first line of what was sent.
  std::optional<std::pair<Clock::time_point, std::string>> first_request(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return std::nullopt;
    pollfd q{c, POLLIN, 0};
    char buf[512];
    ssize_t n = ::poll(&q, 1, timeout_ms) == 1 ? ::read(c, buf, sizeof buf) : -1;
    auto t = Clock::now();
    ::close(c);
    if (n <= 0) return std::nullopt;
    std::string text(buf, static_cast<std::size_t>(n));
    return std::make_pair(t, text.substr(0, text.find('\r')));
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

void module_rows(BenchHome& h) {
  // Per module: verify (read, BLAKE2b, Ed25519, sha256 binding) and load (memfd, dlopen, ABI, start).
  std::map<std::string, std::vector<double>> verify, load;
  std::size_t module_count = 0;
  std::vector<std::string> default_loaded;
  double boot_all = median_ms(kRuns, [&] {
    Kernel k(h.config({}));
    default_loaded.clear();
    for (auto& m : k.modules().modules())
      if (m.state == ModuleState::loaded) default_loaded.push_back(m.name);
    k.modules().load_deferred();  // time every module, used by this configuration or not
    module_count = 0;
    for (auto& m : k.modules().modules()) {
      verify[m.name].push_back(m.verify_ms);
      load[m.name].push_back(m.load_ms);
      ++module_count;
    }
  });
  const bool detail = std::getenv("KEEL_BENCH_DETAIL") != nullptr;
  double verify_sum = 0, load_sum = 0, worst = 0;
  std::string worst_name;
  for (auto& [name, v] : verify) {
    double mv = stats(v).median, ml = stats(load[name]).median;
    verify_sum += mv;
    load_sum += ml;
    if (mv + ml > worst) worst = mv + ml, worst_name = name;
    print({"verify + load module " + name, mv + ml, "ms", "<= 2"});
    if (detail) {
      print({"  verify " + name, mv, "ms", ""});
      print({"  load + start " + name, ml, "ms", ""});
    }
  }
  print({"all " + std::to_string(module_count) + " modules: sum of verify medians", verify_sum, "ms", ""});
  print({"all " + std::to_string(module_count) + " modules: sum of load + start medians", load_sum, "ms", ""});
  print({"kernel boot + load_deferred, all " + std::to_string(module_count) + " modules (in-process)", boot_all, "ms", ""});

  double boot_default = median_ms(kRuns, [&] { Kernel k(h.config({})); });
  print({"kernel boot, default config, " + std::to_string(default_loaded.size()) + " modules loaded (in-process)",
         boot_default, "ms", ""});
}

void process_rows(BenchHome& h) {
  const std::string keel = KEEL_BINARY;
  // The floor: creating any process.
  const std::string truth = fs::exists("/bin/true") ? "/bin/true" : "/usr/bin/true";
  print({"fork+exec+wait /bin/true (process creation floor)", median_ms(kRuns, [&] { wait_exit(spawn({truth}, {})); }),
         "ms", ""});
  // Dynamic loading of keel's libraries and static initialisation, no kernel.
  print({"`keel --version` process (dynamic loading + static init)",
         median_ms(kRuns, [&] { wait_exit(spawn({keel, "--version"}, h.home())); }), "ms", ""});

  // Process start → the first request reaches the provider's server (a loopback listener).
  Listener listener;
  const std::string base_url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/v1";
  std::string first_line;
  auto to_first_request = [&](const std::vector<std::string>& sandbox_args) {
    std::vector<std::string> args{keel, "exec", "-C", h.work().string()};
    args.insert(args.end(), sandbox_args.begin(), sandbox_args.end());
    for (const auto& c : {std::string("model_provider=\"bench\""), std::string("model=\"mock-model\""),
                          "model_providers.bench.base_url=" + toml_string(base_url),
                          std::string("model_providers.bench.wire_api=\"responses\""),
                          std::string("model_providers.bench.request_max_retries=0"),
                          std::string("model_providers.bench.stream_max_retries=0")}) {
      args.push_back("-c");
      args.push_back(c);
    }
    args.push_back("hi");
    std::vector<double> t;
    int failures = 0;
    for (int i = 0; i < kRuns; ++i) {
      listener.drain();
      auto start = Clock::now();
      pid_t pid = spawn(args, h.home());
      auto got = listener.first_request(10000);
      ::kill(pid, SIGKILL);
      wait_exit(pid);
      if (!got) {
        ++failures;
        continue;
      }
      first_line = got->second;
      t.push_back(std::chrono::duration<double, std::milli>(got->first - start).count());
    }
    if (failures) std::fprintf(stderr, "keel-bench startup: %d runs never reached the provider\n", failures);
    return stats(t).median;
  };
  print({"process start -> first provider request, -s danger-full-access", to_first_request({"-s", "danger-full-access"}),
         "ms", "<= 30"});
  print({"process start -> first provider request, workspace-write/bwrap", to_first_request({}), "ms", "<= 30"});
  if (!first_line.empty()) std::fprintf(stderr, "keel-bench startup: the first request was `%s`\n", first_line.c_str());

  // The whole process: start, replayed response, rendering, shutdown (an upper bound).
  write_text(h.tmp() / "one.jsonl", "{\"text\":\"ok\"}\n");
  const std::string script = (h.tmp() / "one.jsonl").string();
  auto whole = [&](const std::vector<std::string>& sandbox_args) {
    std::vector<std::string> args{keel, "exec", "-C", h.work().string()};
    args.insert(args.end(), sandbox_args.begin(), sandbox_args.end());
    args.insert(args.end(), {"--replay", script, "hi"});
    int bad = 0;
    double m = median_ms(kRuns, [&] { bad += wait_exit(spawn(args, h.home())) != 0; });
    if (bad) std::fprintf(stderr, "keel-bench startup: %d `keel exec --replay` runs failed\n", bad);
    return m;
  };
  print({"whole `keel exec --replay` process, -s danger-full-access", whole({"-s", "danger-full-access"}), "ms",
         "<= 30 (ub)"});
  print({"whole `keel exec --replay` process, workspace-write/bwrap", whole({}), "ms", "<= 30 (ub)"});
}

}  // namespace

void startup() {
  try {
    BenchHome h("startup");
    module_rows(h);
    process_rows(h);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-bench startup: %s\n", e.what());
    note(std::string("startup not measured: ") + e.what());
  }
}

}  // namespace keel::bench
