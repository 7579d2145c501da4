// Start-up (targets: ≤ 30 ms from process start to the first provider request with every
// first-party module verified and loaded; ≤ 2 ms verify + load per module), 31 runs each:
//  - verify + load of every first-party module, from in-process boots (deferred modules loaded
//    too); KEEL_BENCH_DETAIL=1 also prints verify and load + start separately;
//  - kernel boots in-process: every module, and the default configuration;
//  - what verify and load are made of: reading, the minisign check, SHA-256 (OpenSSL, and
//    libsodium for comparison), the staging of each library in a sealed memfd, dlopen;
//  - fresh processes (posix_spawn, wall time and the process's own CPU time): /bin/true (the
//    floor), `keel --version` (dynamic loading of keel's ~30 libraries — Poco, OpenSSL, ICU,
//    libarchive... — and static initialisation, no kernel), `keel exec` until its first
//    request arrives at a loopback listener (the real "first provider request"), and a whole
//    `keel exec --replay` run (an upper bound) — with `-s danger-full-access` and with the
//    default workspace-write sandbox (bwrap).
#include "bench_kernel.hpp"

#include <keel/market/archive.hpp>
#include <keel/market/minisign.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>


#include <sodium.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>

namespace keel::bench {

namespace {

constexpr int kRuns = 31;

// posix_spawn (no copy of this large process's page tables, unlike fork) with stdin, stdout
// and stderr on /dev/null and KEEL_HOME set; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& home) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "KEEL_HOME=", 10) != 0) env_strings.emplace_back(*e);
  if (!home.empty()) env_strings.push_back("KEEL_HOME=" + home.string());
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot run " + args[0] + ": " + std::strerror(rc));
  return pid;
}

struct Exit {
  int code = -1;
  double cpu_ms = 0;  // user + system time of the process (not of its children)
};

Exit wait_exit(pid_t pid) {
  int status = 0;
  rusage ru{};
  ::wait4(pid, &status, 0, &ru);
  auto ms = [](const timeval& t) { return t.tv_sec * 1000.0 + t.tv_usec / 1000.0; };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ms(ru.ru_utime) + ms(ru.ru_stime)};
}

// Runs the process `kRuns` times; prints the median wall time and the median CPU time.
void process_row(const std::string& name, const std::string& tag, const std::vector<std::string>& args,
                 const fs::path& home, const std::string& target) {
  std::vector<double> wall, cpu;
  int bad = 0;
  for (int i = 0; i < kRuns; ++i) {
    auto a = Clock::now();
    auto e = wait_exit(spawn(args, home));
    wall.push_back(ms_since(a));
    cpu.push_back(e.cpu_ms);
    bad += e.code != 0;
  }
  if (bad) std::fprintf(stderr, "keel-bench startup: %d runs of %s failed\n", bad, name.c_str());
  print({name, stats(wall).median, "ms", target});
  print({"  CPU time (user + sys), " + tag, stats(cpu).median, "ms", ""});
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

double process_cpu_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1000.0 + t.tv_nsec / 1e6;
}

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
  print({"kernel boot + load_deferred + shutdown, all " + std::to_string(module_count) + " modules (in-process)", boot_all, "ms", ""});

  std::vector<double> cpu;
  double boot_default = median_ms(kRuns, [&] {
    double c0 = process_cpu_ms();
    {
      Kernel k(h.config({}));
    }
    cpu.push_back(process_cpu_ms() - c0);
  });
  print({"kernel boot + shutdown, default config, " + std::to_string(default_loaded.size()) + " modules (in-process)",
         boot_default, "ms", ""});
  print({"  CPU time of the bench process during that boot", stats(cpu).median, "ms", ""});
}

// What verification is made of, summed over every installed module: reading the library,
// the minisign check (BLAKE2b-512 prehash + Ed25519) and the SHA-256 the signed binding names
// (OpenSSL's, which uses the CPU's SHA extensions; libsodium's portable one for comparison).
void verify_breakdown(BenchHome& h) {
  market::StoreLayout store{h.home()};
  std::vector<market::DiscoveryProblem> problems;
  auto modules = market::discover_modules(store.modules(), problems);
  std::vector<std::string> warnings;
  auto trusted = market::load_trusted_keys(store.trusted_keys(), warnings);
  std::vector<std::vector<std::uint8_t>> bytes;
  std::vector<market::Signature> sigs;
  std::size_t total = 0;
  for (auto& m : modules) {
    bytes.push_back(market::read_file_bytes(m.library()));
    sigs.push_back(market::Signature::load(m.signature()));
    total += bytes.back().size();
  }
  const std::string what = std::to_string(modules.size()) + " libraries, " +
                           std::to_string(total / 1024) + " KiB";
  print({"read of all " + what, median_ms(kRuns, [&] {
           for (auto& m : modules) market::read_file_bytes(m.library());
         }), "ms", ""});
  print({"  minisign verify (BLAKE2b + Ed25519) of all", median_ms(kRuns, [&] {
           for (std::size_t i = 0; i < bytes.size(); ++i) market::verify_with_any(trusted, bytes[i], sigs[i]);
         }), "ms", ""});
  print({"  SHA-256 (OpenSSL, as the host does) of all", median_ms(kRuns, [&] {
           for (auto& b : bytes) market::sha256_hex(b);
         }), "ms", ""});
  print({"  SHA-256 (libsodium, for comparison) of all", median_ms(kRuns, [&] {
           unsigned char md[crypto_hash_sha256_BYTES];
           for (auto& b : bytes) crypto_hash_sha256(md, b.data(), b.size());
         }), "ms", ""});
  // What loading is made of: the module host copies each verified library into a sealed
  // memfd and dlopens it through /proc/self/fd/N.
  print({"stage: memfd_create + write + seal, x" + std::to_string(modules.size()), median_ms(kRuns, [&] {
           for (auto& b : bytes) {
             int fd = ::memfd_create("keel-bench", MFD_CLOEXEC | MFD_ALLOW_SEALING);
             if (fd < 0 || ::write(fd, b.data(), b.size()) != static_cast<ssize_t>(b.size()))
               throw std::runtime_error("memfd staging failed");
             ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
             ::close(fd);
           }
         }), "ms", ""});
  print({"dlopen(RTLD_NOW | RTLD_LOCAL) + dlclose of all " + std::to_string(modules.size()), median_ms(kRuns, [&] {
           for (auto& m : modules) {
             void* lib = ::dlopen(m.library().c_str(), RTLD_NOW | RTLD_LOCAL);
             if (!lib) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
             ::dlclose(lib);
           }
         }), "ms", ""});
}

void process_rows(BenchHome& h) {
  const std::string keel = KEEL_BINARY;
  // The floor: creating any process.
  const std::string truth = fs::exists("/bin/true") ? "/bin/true" : "/usr/bin/true";
  process_row("spawn + wait /bin/true (process creation floor)", "/bin/true", {truth}, {}, "");
  // Dynamic loading of keel's libraries and static initialisation, no kernel.
  process_row("`keel --version` (dynamic loading + static init)", "keel --version", {keel, "--version"}, h.home(), "");

  // Process start → the first request reaches the provider's server (a loopback listener).
  Listener listener;
  const std::string base_url = "http://127.0.0.1:" + std::to_string(listener.port()) + "/v1";
  std::string first_line;
  auto to_first_request = [&](const std::string& name, const std::string& tag,
                              const std::vector<std::string>& sandbox_args) {
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
    std::vector<double> wall, cpu;
    int failures = 0;
    for (int i = 0; i < kRuns; ++i) {
      listener.drain();
      auto start = Clock::now();
      pid_t pid = spawn(args, h.home());
      auto got = listener.first_request(10000);
      ::kill(pid, SIGKILL);
      auto e = wait_exit(pid);
      if (!got) {
        ++failures;
        continue;
      }
      first_line = got->second;
      wall.push_back(std::chrono::duration<double, std::milli>(got->first - start).count());
      cpu.push_back(e.cpu_ms);
    }
    if (failures) std::fprintf(stderr, "keel-bench startup: %d runs never reached the provider\n", failures);
    print({name, stats(wall).median, "ms", "<= 30"});
    print({"  CPU time (user + sys) until killed, " + tag, stats(cpu).median, "ms", ""});
  };
  to_first_request("process start -> first provider request, -s danger-full-access", "danger-full-access",
                   {"-s", "danger-full-access"});
  to_first_request("process start -> first provider request, workspace-write/bwrap", "workspace-write", {});
  if (!first_line.empty()) std::fprintf(stderr, "keel-bench startup: the first request was `%s`\n", first_line.c_str());

  // The whole process: start, replayed response, rendering, shutdown (an upper bound).
  write_text(h.tmp() / "one.jsonl", "{\"text\":\"ok\"}\n");
  const std::string script = (h.tmp() / "one.jsonl").string();
  auto whole = [&](const std::string& name, const std::string& tag, const std::vector<std::string>& sandbox_args) {
    std::vector<std::string> args{keel, "exec", "-C", h.work().string()};
    args.insert(args.end(), sandbox_args.begin(), sandbox_args.end());
    args.insert(args.end(), {"--replay", script, "hi"});
    process_row(name, tag, args, h.home(), "<= 30 (ub)");
  };
  whole("whole `keel exec --replay` process, -s danger-full-access", "whole exec, danger-full-access",
        {"-s", "danger-full-access"});
  whole("whole `keel exec --replay` process, workspace-write/bwrap", "whole exec, workspace-write", {});
}

}  // namespace

void startup() {
  try {
    BenchHome h("startup");
    module_rows(h);
    verify_breakdown(h);
    process_rows(h);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-bench startup: %s\n", e.what());
    note(std::string("startup not measured: ") + e.what());
  }
}

}  // namespace keel::bench
