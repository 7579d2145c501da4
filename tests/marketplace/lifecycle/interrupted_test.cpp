// An install killed midway (SIGKILL: no destructor, no cleanup) leaves the previous version
// installed and loadable; the next install cleans up after it and succeeds.
#include "fixture.hpp"
#include "static_server.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <thread>

using namespace keel::test;

namespace {

struct Installed {
  TempDir tmp{"keel-market"};
  Publisher pub{tmp / "market"};
  Home home{tmp / "home"};
  std::unique_ptr<StaticServer> server;

  explicit Installed(bool http) {
    home.trust(pub.key().public_key, "publisher");
    pub.add(PackageSpec("echo-tool", "1.0.0"));
    pub.publish(1);
    if (http) server = std::make_unique<StaticServer>(pub.dir());
    Plugins p(home.options());
    p.marketplaces().add("test", http ? server->url() : pub.dir().string());
    p.install_from_marketplace("echo-tool");
    pub.add(PackageSpec("echo-tool", "2.0.0").pad(1 << 20));  // big enough to be caught mid-download
    pub.publish(2);
    p.marketplaces().update("test");
  }

  // Forks a child that installs echo-tool 2.0.0 with `fault` as its fault hook.
  pid_t start_install(std::function<void(std::string_view)> fault) const {
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      try {
        auto o = home.options();
        o.fault = std::move(fault);
        Plugins p(o);
        p.install_from_marketplace("echo-tool@2.0.0");
      } catch (...) {
        ::_exit(3);
      }
      ::_exit(0);
    }
    return pid;
  }

  std::vector<fs::path> leftovers() const {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(home.layout().packages()))
      if (e.path().filename().string().starts_with(".partial-")) out.push_back(e.path());
    for (auto& e : fs::directory_iterator(home.layout().modules()))
      if (e.path().filename().string().starts_with(".")) out.push_back(e.path());
    return out;
  }
};

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

}  // namespace

TEST_CASE("an install killed at each step leaves a loadable version", "[marketplace][interrupted]") {
  auto point = GENERATE(as<std::string>{}, "downloading", "downloaded", "verified", "installed");
  INFO("killed at " << point);
  Installed w(false);
  pid_t pid = w.start_install([point](std::string_view at) {
    if (at == point) ::raise(SIGKILL);
  });
  int status = wait_for(pid);
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);

  if (point == "installed") {
    // The new version was complete and in place; the old one not yet removed.
    w.home.require_loadable("echo-tool", "2.0.0");
    CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"1.0.0", "2.0.0"});
  } else {
    w.home.require_loadable("echo-tool", "1.0.0");
    CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"1.0.0"});
  }
  if (point == "downloading" || point == "downloaded") CHECK(!w.leftovers().empty());

  // The next run cleans up and finishes the job.
  Plugins p(w.home.options());
  p.install_from_marketplace("echo-tool@2.0.0");
  w.home.require_loadable("echo-tool", "2.0.0");
  CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"2.0.0"});
  CHECK(w.leftovers().empty());
}

TEST_CASE("an install killed mid-download over HTTP leaves the old version loadable", "[marketplace][interrupted][http]") {
  Installed w(true);
  w.server->stall("echo-tool-2.0.0.keelpkg", 200000);
  pid_t pid = w.start_install({});
  // Wait until the child has written part of the package, then kill it.
  bool partial = false;
  for (int i = 0; i < 2000 && !partial; ++i) {
    for (auto& f : w.leftovers())
      if (f.filename().string().starts_with(".partial-") && fs::file_size(f) >= 100000) partial = true;
    if (!partial) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  int status = wait_for(pid);
  w.server->release();
  REQUIRE(partial);
  REQUIRE(WIFSIGNALED(status));

  w.home.require_loadable("echo-tool", "1.0.0");
  CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"1.0.0"});

  Plugins p(w.home.options());
  p.install_from_marketplace("echo-tool@2.0.0");
  w.home.require_loadable("echo-tool", "2.0.0");
  CHECK(w.leftovers().empty());
}

TEST_CASE("two installs at once take turns on the store lock", "[marketplace][interrupted]") {
  Installed w(false);
  // The child stops at "downloaded" for a moment while holding the lock.
  pid_t pid = w.start_install([](std::string_view at) {
    if (at == "downloaded") std::this_thread::sleep_for(std::chrono::milliseconds(300));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto o = w.home.options();
  Plugins p(o);
  p.install_from_marketplace("echo-tool@2.0.0");  // waits, then finds it installed or reinstalls
  CHECK(wait_for(pid) == 0);
  w.home.require_loadable("echo-tool", "2.0.0");
}
