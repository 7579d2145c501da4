// Marketplace benchmarks:
//  - `keel plugin install` of a 5 MB package from an index on loopback HTTP (target <= 100 ms):
//    in-process (Plugins::install_from_marketplace) and as a whole `keel plugin install` process;
//  - start-up with 200 installed modules (target <= 150 ms): 200 tiny signed tool modules plus
//    the first-party ones, a kernel boot in-process and a whole `keel exec --replay` process.
// Needs: keel_kernel, keel_market, Poco::Net; KEEL_BUILD_HOME, KEEL_BINARY and (optional)
// KEEL_BENCH_MODULE (the library built from tests/marketplace/lifecycle/bench-module).
#include "bench.hpp"

#include <keel/kernel/kernel.hpp>
#include <keel/market/archive.hpp>
#include <keel/market/index.hpp>
#include <keel/market/plugins.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <cstring>

#ifndef KEEL_BENCH_MODULE
#define KEEL_BENCH_MODULE KEEL_BUILD_HOME "/../tests/marketplace/lifecycle/bench-module/libkeel-bench-module.so"
#endif

namespace keel::bench {

void marketplace();

namespace {

namespace fs = std::filesystem;
using namespace keel::market;

void write_bytes(const fs::path& p, std::string_view bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Serves files from one folder on 127.0.0.1 (Content-Length, no chunking), like any static server.
class FileServer {
 public:
  explicit FileServer(fs::path root) : root_(std::move(root)) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(root_), socket, new Poco::Net::HTTPServerParams);
    server_->start();
  }
  ~FileServer() { server_->stopAll(true); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  struct Handler : Poco::Net::HTTPRequestHandler {
    explicit Handler(const fs::path& r) : root(r) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req, Poco::Net::HTTPServerResponse& res) override {
      fs::path file = root / req.getURI().substr(1);
      if (req.getURI().find("..") != std::string::npos || !fs::is_regular_file(file)) {
        res.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
        res.send() << "not found";
        return;
      }
      res.sendFile(file.string(), "application/octet-stream");
    }
    fs::path root;
  };
  struct Factory : Poco::Net::HTTPRequestHandlerFactory {
    explicit Factory(const fs::path& r) : root(r) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
      return new Handler(root);
    }
    fs::path root;
  };
  fs::path root_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

int run_keel(const std::vector<std::string>& args, const fs::path& home) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("KEEL_HOME", home.c_str(), 1);
    int null = ::open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    std::vector<char*> argv{const_cast<char*>("keel")};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(KEEL_BINARY, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void publish_index(const fs::path& dir, const SecretKey& key, std::vector<IndexPackage> packages) {
  Index idx;
  idx.name = "bench";
  idx.index_version = 1;
  idx.expires = format_rfc3339(std::chrono::system_clock::now() + std::chrono::hours(24));
  idx.packages = std::move(packages);
  auto text = write_index(idx);
  std::span<const std::uint8_t> b(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  write_bytes(dir / "index.json", text);
  write_bytes(dir / "index.json.minisig", sign(key, b, index_binding("bench", 1, sha256_hex(b))).to_file());
}

void install_bench(const fs::path& tmp) {
  auto kp = generate_keypair();
  const fs::path market = tmp / "market", work = tmp / "work", home = tmp / "home";
  // A 5 MB (incompressible) library: hashed, verified and unpacked like any other.
  std::string lib(5u << 20, '\0');
  std::mt19937_64 rng(7);
  for (std::size_t i = 0; i < lib.size(); i += 8) {
    auto v = rng();
    std::memcpy(lib.data() + i, &v, std::min<std::size_t>(8, lib.size() - i));
  }
  write_bytes(work / "libbig.so", lib);
  write_bytes(work / "module.json",
              R"({"name": "big", "version": "1.0.0", "kind": "tool", "description": "5 MB", "library": "libbig.so"})");
  auto pkg = pack_module({work / "module.json", work / "libbig.so", {}}, kp.secret_key, market / "big-1.0.0.keelpkg");
  IndexPackage e;
  e.name = "big";
  e.version = "1.0.0";
  e.kind = "tool";
  e.publisher = kp.secret_key.key_id_hex();
  e.sha256 = sha256_file_hex(pkg);
  e.size = fs::file_size(pkg);
  e.file = pkg.filename().string();
  publish_index(market, kp.secret_key, {e});
  FileServer server(market);

  StoreLayout{home}.create_directories();
  write_bytes(home / "trusted_keys" / "bench.pub", kp.public_key.to_file());
  PluginsOptions o;
  o.keel_home = home;
  Plugins plugins(o);
  plugins.marketplaces().add("bench", server.url());

  std::vector<double> t, cpu;
  auto cpu_ms = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
  };
  for (int i = 0; i < 11; ++i) {
    auto a = std::chrono::steady_clock::now();
    double c = cpu_ms();
    plugins.install_from_marketplace("big");
    cpu.push_back(cpu_ms() - c);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    plugins.remove("big");
  }
  std::sort(t.begin(), t.end());
  std::sort(cpu.begin(), cpu.end());
  print({"plugin install, 5 MB package, loopback HTTP index (in-process)", t[t.size() / 2], "ms", "<= 100"});
  print({"  the same, CPU time (client + in-process server)", cpu[cpu.size() / 2], "ms", ""});

  t.clear();
  for (int i = 0; i < 11; ++i) {
    auto a = std::chrono::steady_clock::now();
    int rc = run_keel({"plugin", "install", "big"}, home);
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    if (rc != 0) std::fprintf(stderr, "keel plugin install failed (%d)\n", rc);
    plugins.remove("big");
  }
  std::sort(t.begin(), t.end());
  print({"`keel plugin install` of a 5 MB package (whole process)", t[t.size() / 2], "ms", "<= 100"});
}

void startup_bench(const fs::path& tmp) {
  const fs::path home = tmp / "home200", work = tmp / "work200";
  auto lib = read_all(KEEL_BENCH_MODULE);
  if (lib.empty()) {
    std::fprintf(stderr, "bench_marketplace: no bench module at %s\n", KEEL_BENCH_MODULE);
    return;
  }
  auto kp = generate_keypair();
  StoreLayout store{home};
  store.create_directories();
  write_bytes(home / "trusted_keys" / "bench.pub", kp.public_key.to_file());
  std::vector<std::string> warnings;
  std::vector<PublicKey> trusted{kp.public_key};
  constexpr int kModules = 200;
  for (int i = 0; i < kModules; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "%011d", i);
    std::string patched = lib;
    for (std::string from : {"bm-00000000000", "bm_00000000000"}) {
      std::string to = from.substr(0, 3) + id;
      for (auto at = patched.find(from); at != std::string::npos; at = patched.find(from, at + 1))
        patched.replace(at, from.size(), to);
    }
    auto dir = work / id;
    write_bytes(dir / "libkeel-bench-module.so", patched);
    write_bytes(dir / "module.json", std::string(R"({"name": "bm-)") + id +
                                         R"(", "version": "1.0.0", "kind": "tool", "library": "libkeel-bench-module.so"})");
    auto pkg = pack_module({dir / "module.json", dir / "libkeel-bench-module.so", {}}, kp.secret_key, dir / "p.keelpkg");
    install_package(pkg, store, trusted);
  }
  auto load = [&](const fs::path& h) {
    ConfigSources src;
    src.keel_home = h;
    src.cwd = tmp;
    src.read_files = false;
    return Config::load(src);
  };
  std::size_t loaded = 0;
  std::vector<double> verify, map_start, cpu;
  double boot = median_ms(11, [&] {
    rusage before{}, after{};
    getrusage(RUSAGE_SELF, &before);
    Kernel k(load(home));
    getrusage(RUSAGE_SELF, &after);
    auto ms = [](const timeval& a, const timeval& b) { return (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_usec - a.tv_usec) / 1e3; };
    cpu.push_back(ms(before.ru_utime, after.ru_utime) + ms(before.ru_stime, after.ru_stime));
    loaded = 0;
    for (auto& m : k.modules().modules()) {
      loaded += m.state == ModuleState::loaded;
      verify.push_back(m.verify_ms);
      map_start.push_back(m.load_ms);
    }
  });
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  print({"kernel boot, " + std::to_string(loaded) + " installed plugin modules (in-process)", boot, "ms", "<= 150"});
  print({"  the same, CPU time", median(cpu), "ms", ""});
  print({"  per module: verify (read, BLAKE2b, Ed25519, sha256)", median(verify), "ms", ""});
  print({"  per module: load (memfd, dlopen, ABI, start)", median(map_start), "ms", ""});

  // The same 200 next to the first-party modules, and a whole `keel exec` process.
  fs::copy(fs::path(KEEL_BUILD_HOME) / "modules", home / "modules",
           fs::copy_options::recursive | fs::copy_options::skip_existing);
  fs::copy(fs::path(KEEL_BUILD_HOME) / "trusted_keys", home / "trusted_keys",
           fs::copy_options::recursive | fs::copy_options::skip_existing);
  double boot_all = median_ms(11, [&] {
    Kernel k(load(home));
    loaded = 0;
    for (auto& m : k.modules().modules()) loaded += m.state == ModuleState::loaded;
  });
  print({"kernel boot, " + std::to_string(loaded) + " modules (200 plugins + first-party)", boot_all, "ms", "<= 150"});
  write_bytes(tmp / "one.jsonl", "{\"text\":\"ok\"}\n");
  double process = median_ms(11, [&] {
    run_keel({"exec", "-C", tmp.string(), "--replay", (tmp / "one.jsonl").string(), "hi"}, home);
  });
  print({"`keel exec --replay` process with 200 plugins + first-party", process, "ms", "<= 150"});
}

}  // namespace

void marketplace() {
  auto tmp = fs::temp_directory_path() / ("keel-bench-market-" + std::to_string(getpid()));
  fs::create_directories(tmp);
  try {
    install_bench(tmp);
    startup_bench(tmp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_marketplace: %s\n", e.what());
  }
  fs::remove_all(tmp);
}

}  // namespace keel::bench
