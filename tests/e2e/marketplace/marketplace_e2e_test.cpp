// The third-party author's path, end to end, with real tools only:
//   cmake --install keel into a prefix; build examples/hello-plugin against that installed SDK
//   (its own cmake configure + build); a key from the stock `minisign -G -W`; keel-pack pack;
//   the package signed by the stock `minisign -S` with keel's binding; keel-pack index; the
//   folder served by `python3 -m http.server` on loopback; then, as the user: keel trust add,
//   keel plugin marketplace add, keel plugin install hello, a replayed session whose model
//   calls the new tool and gets its answer; keel plugin remove hello, and the tool is gone.
#include <keel/common/process.hpp>
#include <keel/market/sha256.hpp>

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using keel::test::TempDir;

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.flush());
}

struct Run {
  int code = -1;
  std::string out, err;
  std::string all() const { return "exit " + std::to_string(code) + "\nstdout:\n" + out + "\nstderr:\n" + err; }
};

Run run(std::vector<std::string> argv, const fs::path& cwd, std::map<std::string, std::string> env = {},
        int timeout_s = 300) {
  keel::common::ProcessOptions o;
  o.argv = std::move(argv);
  o.cwd = cwd.string();
  o.env = std::move(env);
  // The author's build must see nothing of keel's own build environment.
  o.env_remove = {"CMAKE_PREFIX_PATH", "KEEL_LOG", "KEEL_SIGN_PASSWORD", "MAKEFLAGS", "CCACHE_DISABLE"};
  o.timeout = std::chrono::seconds(timeout_s);
  o.max_output_bytes = 4 << 20;
  auto r = keel::common::run_process(o);
  Run out{r.exit_code, r.stdout_text(), r.stderr_text()};
  if (!r.spawned) out.err += "\n(could not start " + o.argv[0] + ": " + r.error + ")";
  return out;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// `python3 -m http.server 0 --bind 127.0.0.1` serving `dir`; the port comes from its banner.
class HttpServer {
 public:
  explicit HttpServer(const fs::path& dir) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    std::vector<std::string> args{"python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                                  dir.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawnp(&pid_, "python3", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    REQUIRE(rc == 0);
    fd_ = out[0];
    // "Serving HTTP on 127.0.0.1 port 41235 (http://127.0.0.1:41235/) ..."
    std::string banner;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (banner.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[256];
      auto n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      banner.append(buf, static_cast<std::size_t>(n));
    }
    auto at = banner.find(" port ");
    INFO("http.server said: " << banner);
    REQUIRE(at != std::string::npos);
    port_ = std::stoi(banner.substr(at + 6));
  }
  ~HttpServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status;
      ::waitpid(pid_, &status, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_CASE("a third-party plugin goes from the installed SDK to a replayed session and back out",
          "[e2e][marketplace]") {
  TempDir tmp{"keel-e2e-market"};
  const fs::path prefix = tmp / "prefix";
  const fs::path author = tmp / "author";      // the plugin author's checkout
  const fs::path market = tmp / "market";      // what the author publishes
  const fs::path home = tmp / "home";          // the user's KEEL_HOME
  const fs::path work = tmp / "work";          // the user's project
  fs::create_directories(market);
  fs::create_directories(work);
  fs::create_directories(home);

  // 1. keel, installed: the SDK headers, KeelSDKConfig.cmake, keel and keel-pack.
  auto inst = run({KEEL_CMAKE, "--install", KEEL_BINARY_DIR, "--prefix", prefix.string()}, tmp.path());
  INFO(inst.all());
  REQUIRE(inst.code == 0);
  REQUIRE(fs::exists(prefix / "lib/cmake/KeelSDK/KeelSDKConfig.cmake"));
  REQUIRE(fs::exists(prefix / "include/keel/sdk/tool.hpp"));
  const std::string keel = (prefix / "bin/keel").string();
  const std::string keel_pack = (prefix / "bin/keel-pack").string();
  REQUIRE(fs::exists(keel));
  REQUIRE(fs::exists(keel_pack));

  // 2. The author's plugin, a copy of examples/hello-plugin, built against that prefix alone.
  fs::copy(fs::path(KEEL_SOURCE_DIR) / "examples/hello-plugin", author, fs::copy_options::recursive);
  fs::remove_all(author / "build");
  auto conf = run({KEEL_CMAKE, "-S", author.string(), "-B", (author / "build").string(), "-G", KEEL_GENERATOR,
                   "-DCMAKE_MAKE_PROGRAM=" KEEL_MAKE_PROGRAM, "-DCMAKE_BUILD_TYPE=Release",
                   "-DCMAKE_PREFIX_PATH=" + prefix.string()},
                  author);
  INFO(conf.all());
  REQUIRE(conf.code == 0);
  auto build = run({KEEL_CMAKE, "--build", (author / "build").string()}, author);
  INFO(build.all());
  REQUIRE(build.code == 0);
  const fs::path lib = author / "build/libhello.so";
  REQUIRE(fs::exists(lib));

  // 3. A key from the stock minisign; pack; sign the package with the stock minisign.
  auto gen = run({KEEL_MINISIGN, "-G", "-W", "-p", (author / "author.pub").string(), "-s",
                  (author / "author.key").string()},
                 author);
  INFO(gen.all());
  REQUIRE(gen.code == 0);
  auto pack = run({keel_pack, "pack", "--manifest", (author / "module.json").string(), "--lib", lib.string(), "--key",
                   (author / "author.key").string(), "-o", market.string()},
                  author);
  INFO(pack.all());
  REQUIRE(pack.code == 0);
  const fs::path pkg = market / "hello-1.0.0.keelpkg";
  REQUIRE(fs::exists(pkg));
  fs::remove(market / "hello-1.0.0.keelpkg.minisig");  // re-signed by minisign itself below
  const std::string binding = "keel-package name=hello version=1.0.0 sha256=" + keel::market::sha256_file_hex(pkg);
  auto sig = run({KEEL_MINISIGN, "-S", "-s", (author / "author.key").string(), "-m", pkg.string(), "-t", binding}, author);
  INFO(sig.all());
  REQUIRE(sig.code == 0);
  REQUIRE(fs::exists(market / "hello-1.0.0.keelpkg.minisig"));

  // 4. The index, signed, in the folder the web server serves as is.
  auto index = run({keel_pack, "index", market.string(), "--key", (author / "author.key").string(), "--name", "demo"},
                   author);
  INFO(index.all());
  REQUIRE(index.code == 0);
  auto verify = run({KEEL_MINISIGN, "-V", "-p", (author / "author.pub").string(), "-m", (market / "index.json").string()},
                    author);
  INFO(verify.all());
  REQUIRE(verify.code == 0);
  CHECK(contains(verify.out + verify.err, "keel-index name=demo version=1"));
  HttpServer server(market);

  // 5. The user: a KEEL_HOME with keel's own signed modules, then the author's key and index.
  fs::copy(fs::path(KEEL_BINARY_DIR) / "keel-home/modules", home / "modules", fs::copy_options::recursive);
  fs::copy(fs::path(KEEL_BINARY_DIR) / "keel-home/trusted_keys", home / "trusted_keys", fs::copy_options::recursive);
  const std::map<std::string, std::string> env{{"KEEL_HOME", home.string()}};
  auto keel_run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), keel);
    return run(args, work, env, 120);
  };

  // Without the key, the index is refused.
  auto untrusted = keel_run({"plugin", "marketplace", "add", "demo", server.url()});
  INFO(untrusted.all());
  CHECK(untrusted.code == 1);
  CHECK(contains(untrusted.err, "not trusted"));

  auto trust = keel_run({"trust", "add", (author / "author.pub").string(), "--name", "hello-author"});
  INFO(trust.all());
  REQUIRE(trust.code == 0);
  CHECK(fs::exists(home / "trusted_keys/hello-author.pub"));
  auto add = keel_run({"plugin", "marketplace", "add", "demo", server.url()});
  INFO(add.all());
  REQUIRE(add.code == 0);
  CHECK(contains(add.out, "index_version 1, 1 package(s)"));
  auto search = keel_run({"plugin", "search", "greet"});
  INFO(search.all());
  CHECK(contains(search.out, "hello 1.0.0"));
  auto install = keel_run({"plugin", "install", "hello"});
  INFO(install.all());
  REQUIRE(install.code == 0);
  CHECK(contains(install.out, "permissions asked for: filesystem none, network none, processes no"));
  CHECK(contains(install.err, "installed hello 1.0.0"));
  REQUIRE(fs::exists(home / "modules/hello/1.0.0/libhello.so"));
  auto list = keel_run({"plugin", "list"});
  CHECK(contains(list.out, "hello 1.0.0  (tool)  from demo"));

  // 6. A replayed session: the model calls the new tool; `expect` fails the run unless the
  // tool's real output carries the greeting.
  write_file(work / "greet.jsonl",
             R"J({"text": "Let me use the hello plugin.", "tool_calls": [{"name": "greet", "arguments": {"name": "Ada"}}]})J"
             "\n"
             R"J({"expect": {"output_contains": "Hello, Ada! (from the hello plugin 1.0.0)"}, "text": "The plugin answered: Hello, Ada!"})J"
             "\n");
  auto session = keel_run({"exec", "--replay", (work / "greet.jsonl").string(), "Greet Ada with the hello plugin"});
  INFO(session.all());
  REQUIRE(session.code == 0);
  CHECK(contains(session.out, "The plugin answered: Hello, Ada!"));
  CHECK(contains(session.err, "Hello, Ada! (from the hello plugin 1.0.0)"));  // the tool's own output

  // 7. Removed: the tool is gone, and a model calling it is told so.
  auto remove = keel_run({"plugin", "remove", "hello"});
  INFO(remove.all());
  REQUIRE(remove.code == 0);
  CHECK(!fs::exists(home / "modules/hello"));
  write_file(work / "gone.jsonl",
             R"J({"tool_calls": [{"name": "greet", "arguments": {"name": "Ada"}}]})J"
             "\n"
             R"J({"expect": {"output_contains": "unknown tool 'greet'"}, "text": "The greet tool is gone."})J"
             "\n");
  auto gone = keel_run({"exec", "--replay", (work / "gone.jsonl").string(), "Greet Ada again"});
  INFO(gone.all());
  REQUIRE(gone.code == 0);
  CHECK(contains(gone.out, "The greet tool is gone."));
  CHECK(contains(gone.err, "unknown tool 'greet'"));
  auto modules = keel_run({"modules"});
  CHECK_FALSE(contains(modules.out, "hello"));
}
