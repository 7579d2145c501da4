// Start-up: verify + load of every first-party module, a kernel boot, and the time from a
// fresh `keel exec` process start to its first provider request.
#include "bench.hpp"

#include <keel/kernel/kernel.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace keel::bench {
namespace fs = std::filesystem;

static Config build_home_config(const fs::path& cwd) {
  ConfigSources src;
  src.keel_home = KEEL_BUILD_HOME;
  src.cwd = cwd;
  src.read_files = false;
  return Config::load(src);
}

void startup() {
  auto dir = fs::temp_directory_path() / ("keel-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "one.jsonl") << R"({"text":"ok"})" << "\n";
  }

  // Per module: verify (read, BLAKE2b, Ed25519, sha256 binding) and load (memfd, dlopen, ABI, start).
  std::map<std::string, std::vector<double>> verify, load;
  std::size_t module_count = 0;
  double boot = median_ms(21, [&] {
    Kernel k(build_home_config(dir));
    k.modules().load_deferred();  // time every module, used by this configuration or not
    module_count = 0;
    for (auto& m : k.modules().modules()) {
      verify[m.name].push_back(m.verify_ms);
      load[m.name].push_back(m.load_ms);
      ++module_count;
    }
  });
  for (auto& [name, v] : verify) {
    std::sort(v.begin(), v.end());
    auto& l = load[name];
    std::sort(l.begin(), l.end());
    print({"verify + load module " + name, v[v.size() / 2] + l[l.size() / 2], "ms", "<= 2"});
  }
  print({"verify + load + start of all " + std::to_string(module_count) + " first-party modules (in-process)", boot, "ms", ""});

  // Whole process: fork+exec `keel exec --replay` until exit (an upper bound of the time to
  // the first provider request: it includes the response, rendering and shutdown).
  double process = median_ms(21, [&] {
    pid_t pid = fork();
    if (pid == 0) {
      setenv("KEEL_HOME", KEEL_BUILD_HOME, 1);
      int null = ::open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      std::string script = (dir / "one.jsonl").string();
      execl(KEEL_BINARY, "keel", "exec", "-C", dir.c_str(), "--replay", script.c_str(), "hi", (char*)nullptr);
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
  });
  print({"process start -> first provider request (upper bound: full keel exec)", process, "ms", "<= 30"});
  fs::remove_all(dir);
}

}  // namespace keel::bench
