// Shared by the sandbox tests: a scratch tree that is *not* under a temp dir (temp dirs are
// writable in workspace-write), a TCP listener on 127.0.0.1 that counts connections, the
// sandbox modules loaded through their C ABI, and running a wrapped command.
#pragma once

#include "abi_test_host.hpp"
#include "scratch_dir.hpp"

#include <keel/common/process.hpp>

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace keel::sandbox_test {

namespace json = boost::json;
namespace fs = std::filesystem;

inline bool within(const fs::path& path, const fs::path& root) {
  auto rel = path.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// base/
//   ws/                  the workspace (cwd): .git/{HEAD,config,hooks/}, .keel/config.toml, src/old.txt, top.txt
//   outside/             a directory no policy makes writable
//   home/                a fake $HOME with files in it
//   extra/               an extra writable root, holding
//     keel-home/         a fake $KEEL_HOME (protected even though extra/ is writable)
//     work/              a subfolder (writable under every backend, see landlock-rules-only)
struct Tree {
  fs::path base, ws, outside, home, extra, keel_home;

  Tree() {
    // Temp dirs are writable roots in workspace-write, so "outside" must not be in one.
    std::string tmpl = (keel::test::scratch_parent() / "keel-sandbox-test-XXXXXX").string();
    if (::mkdtemp(tmpl.data())) base = tmpl;
    if (base.empty()) throw std::runtime_error("no scratch directory outside the temp dirs");
    ws = base / "ws";
    outside = base / "outside";
    home = base / "home";
    extra = base / "extra";
    keel_home = extra / "keel-home";
    write_file(ws / ".git" / "HEAD", "ref: refs/heads/main\n");
    write_file(ws / ".git" / "config", "[core]\n");
    fs::create_directories(ws / ".git" / "hooks");
    write_file(ws / ".keel" / "config.toml", "model = \"x\"\n");
    write_file(ws / "src" / "old.txt", "old\n");
    write_file(ws / "top.txt", "top\n");
    write_file(outside / "keep.txt", "keep\n");
    write_file(home / "notes.txt", "precious\n");
    write_file(home / "projects" / "a.txt", "a\n");
    write_file(keel_home / "config.toml", "sandbox = \"bwrap\"\n");
    fs::create_directories(keel_home / "modules");
    fs::create_directories(extra / "work");
  }
  ~Tree() {
    std::error_code ec;
    fs::remove_all(base, ec);
  }
  Tree(const Tree&) = delete;
  Tree& operator=(const Tree&) = delete;
};

// Accepts connections on 127.0.0.1:<port> until destroyed, counting them.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
          int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
          if (c >= 0) {
            ++accepted_;
            ::close(c);
          }
        }
      }
    });
  }
  ~Listener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// A UDP socket on 127.0.0.1:<port>; received() says whether any datagram arrived.
class UdpReceiver {
 public:
  UdpReceiver() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~UdpReceiver() { ::close(fd_); }
  int port() const { return port_; }
  bool received() const {
    char buf[64];
    return ::recv(fd_, buf, sizeof buf, 0) >= 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

inline std::string module_path(const std::string& backend) {
  if (backend == "bwrap") return KEEL_SANDBOX_BWRAP_PATH;
  if (backend == "landlock") return KEEL_SANDBOX_LANDLOCK_PATH;
  return KEEL_SANDBOX_NONE_PATH;
}

struct Prepared {
  int status = -1;
  std::vector<std::string> argv;
  json::object env;
  std::string error;  // the error message when status != KEEL_OK
};

// One sandbox module instance, loaded from its built file.
struct Sandbox {
  std::string backend;  // capability name: bwrap, landlock, none
  std::string label;    // for test output
  std::unique_ptr<keel::test::AbiTestHost> host;
  bool available = true;
  std::string why_not;

  Sandbox(std::string cap, std::string lbl, const json::object& config) : backend(std::move(cap)), label(std::move(lbl)) {
    host = std::make_unique<keel::test::AbiTestHost>(module_path(backend));
    host->start(json::serialize(config));
    auto st = host->call(backend, "status", "{}");
    REQUIRE(st.status == KEEL_OK);
    auto o = json::parse(st.payload).as_object();
    available = o.at("available").as_bool();
    if (!available) why_not = std::string(o.at("reason").as_string());
  }

  Prepared prepare(const std::vector<std::string>& argv, const std::string& cwd, const json::object& policy,
                   const json::object& env = {}) const {
    json::array a;
    for (const auto& s : argv) a.emplace_back(s);
    auto r = host->call(backend, "prepare",
                        json::serialize(json::object{{"argv", a}, {"cwd", cwd}, {"env", env}, {"policy", policy}}));
    REQUIRE(r.reply_count == 1);
    Prepared p;
    p.status = r.status;
    auto o = json::parse(r.payload).as_object();
    if (r.status != KEEL_OK) {
      p.error = std::string(o.at("error").as_object().at("message").as_string());
      return p;
    }
    for (const auto& v : o.at("argv").as_array()) p.argv.emplace_back(v.as_string());
    p.env = o.at("env").as_object();
    return p;
  }

  std::pair<bool, std::string> explain(const std::vector<std::string>& argv, int exit_code, const std::string& output,
                                       const std::string& cwd, const json::object& policy) const {
    json::array a;
    for (const auto& s : argv) a.emplace_back(s);
    auto r = host->call(backend, "explain",
                        json::serialize(json::object{{"argv", a}, {"exit_code", exit_code}, {"output", output},
                                                     {"cwd", cwd}, {"policy", policy}}));
    REQUIRE(r.status == KEEL_OK);
    auto o = json::parse(r.payload).as_object();
    return {o.at("blocked").as_bool(), std::string(o.at("reason").as_string())};
  }
};

inline json::object sandbox_config(const Tree& t, const std::string& backend, bool mount_namespace = true) {
  json::object c{{"keel_home", t.keel_home.string()}, {"cwd", t.ws.string()}};
  if (backend == "landlock") {
    c["helper"] = KEEL_LANDLOCK_HELPER_PATH;
    c["mount_namespace"] = mount_namespace;
  }
  return c;
}

inline json::object workspace_write(const Tree& t, bool network = false) {
  return json::object{{"mode", "workspace-write"},
                      {"writable_roots", json::array{t.extra.string()}},
                      {"network_access", network},
                      {"protected_paths", json::array{}}};
}

inline keel::common::ProcessResult run(const std::vector<std::string>& argv, const std::string& cwd,
                                       const std::map<std::string, std::string>& env = {}) {
  keel::common::ProcessOptions opts;
  opts.argv = argv;
  opts.cwd = cwd;
  opts.env = env;
  opts.timeout = std::chrono::seconds(30);
  return keel::common::run_process(opts);
}

}  // namespace keel::sandbox_test
