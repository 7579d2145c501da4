// The real `keel modules`, run as a child on temporary copies of the build-tree KEEL_HOME:
// flipping one byte of any installed module's library makes it refuse exactly that module,
// naming it, and load all the others; so does a broken module.json.
#include "support.hpp"

using namespace keel;
using namespace keel::itest;

namespace {

struct ModuleLine {
  std::string state, name, rest;
};

// Parses `keel modules` output: "<state> <name> <version> (<kind>)...".
std::vector<ModuleLine> module_lines(const std::string& out) {
  std::vector<ModuleLine> v;
  for (auto& l : lines(out)) {
    if (l.rfind("KEEL_HOME", 0) == 0 || l.empty()) continue;
    auto a = l.find(' ');
    auto b = l.find_first_not_of(' ', a);
    auto c = l.find(' ', b);
    v.push_back({l.substr(0, a), l.substr(b, c - b), l.substr(c)});
  }
  return v;
}

RunResult keel_modules(const fs::path& home, const fs::path& cwd) {
  return run({kKeelExe.string(), "modules"}, {{"KEEL_HOME", home.string()}, {"HOME", cwd.string()}}, cwd);
}

}  // namespace

TEST_CASE("flipping one byte of an installed library makes `keel modules` refuse that module only",
          "[integration][signatures][cli]") {
  REQUIRE(fs::is_directory(kBuildHome / "modules"));
  std::vector<std::string> names;  // what discovery sees (it skips dot-directories, as installs use)
  {
    std::vector<market::DiscoveryProblem> problems;
    for (auto& m : market::discover_modules(kBuildHome / "modules", problems)) names.push_back(m.manifest.name);
    REQUIRE(problems.empty());
  }
  REQUIRE(names.size() >= 3);

  TempDir cwd{"keel-itest"};
  {  // the untouched build-tree home loads everything
    TempDir tmp{"keel-itest"};
    fs::copy(kBuildHome, tmp / "home", fs::copy_options::recursive);
    auto r = keel_modules(tmp / "home", cwd.path());
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    auto ls = module_lines(r.out);
    REQUIRE(ls.size() == names.size());
    for (auto& l : ls) CHECK(l.state == "loaded");
  }

  for (auto& victim : names) {
    DYNAMIC_SECTION("tampered: " << victim) {
      TempDir tmp{"keel-itest"};
      fs::path home = tmp / "home";
      fs::copy(kBuildHome, home, fs::copy_options::recursive);
      std::vector<market::DiscoveryProblem> problems;
      auto found = market::discover_modules(home / "modules", problems);
      const market::InstalledModule* target = nullptr;
      for (auto& m : found)
        if (m.manifest.name == victim) target = &m;
      REQUIRE(target != nullptr);
      flip_byte(target->library());

      auto r = keel_modules(home, cwd.path());
      INFO(r.describe());
      REQUIRE(r.exit_code == 0);
      auto ls = module_lines(r.out);
      REQUIRE(ls.size() == names.size());
      for (auto& l : ls) {
        INFO(l.state << " " << l.name << l.rest);
        if (l.name == victim) {
          CHECK(l.state == "REFUSED");
          CHECK(l.rest.find("signature") != std::string::npos);
        } else {
          CHECK(l.state == "loaded");
        }
      }
      std::vector<std::string> refusals;
      for (auto& l : lines(r.err))
        if (l.find("refused") != std::string::npos) refusals.push_back(l);
      REQUIRE(refusals.size() == 1);
      CHECK(refusals[0].find("module " + victim + " refused") != std::string::npos);
    }
  }
}

TEST_CASE("a broken module.json makes `keel modules` refuse that module by name; the rest load",
          "[integration][signatures][cli]") {
  TempDir tmp{"keel-itest"}, cwd{"keel-itest"};
  fs::path home = tmp / "home";
  fs::copy(kBuildHome, home, fs::copy_options::recursive);
  std::vector<market::DiscoveryProblem> problems;
  auto found = market::discover_modules(home / "modules", problems);
  REQUIRE(!found.empty());
  auto victim = found.front();
  write_file(victim.dir / "module.json", "{ this is not json");

  auto r = keel_modules(home, cwd.path());
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto ls = module_lines(r.out);
  REQUIRE(ls.size() == found.size());
  for (auto& l : ls) {
    INFO(l.state << " " << l.name << l.rest);
    CHECK(l.state == (l.name == victim.manifest.name ? "REFUSED" : "loaded"));
  }
}
