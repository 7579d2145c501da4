// Modules are only ever loaded at run time: the keel binary links no module library, and
// the first-party modules link nothing of the kernel and export only their entry point.
#include "support.hpp"

using namespace keel::itest;

TEST_CASE("`ldd keel` lists no module library", "[integration][ldd]") {
  auto r = run({"ldd", kKeelExe.string()});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  REQUIRE(r.out.find("libc.so") != std::string::npos);  // ldd really listed something
  CHECK(r.out.find("libkeel") == std::string::npos);
  CHECK(r.out.find("keel-home") == std::string::npos);
  // Nor does its dynamic section name one.
  auto d = run({"readelf", "-d", kKeelExe.string()});
  REQUIRE(d.exit_code == 0);
  for (auto& l : lines(d.out))
    if (l.find("(NEEDED)") != std::string::npos) {
      INFO(l);
      CHECK(l.find("keel") == std::string::npos);
    }
}

TEST_CASE("first-party modules export only keel_module_entry and need nothing of the kernel", "[integration][ldd]") {
  std::vector<keel::market::DiscoveryProblem> problems;
  auto modules = keel::market::discover_modules(kBuildHome / "modules", problems);
  REQUIRE(problems.empty());
  REQUIRE(!modules.empty());
  for (auto& m : modules) {
    auto lib = m.library().string();
    INFO(lib);
    auto exported = run({"nm", "-D", "--defined-only", lib});
    REQUIRE(exported.exit_code == 0);
    std::vector<std::string> symbols;
    for (auto& l : lines(exported.out)) {
      auto sp = l.rfind(' ');
      auto type = l.size() > 17 ? l[17] : '?';
      if (type == 'A') continue;  // version nodes
      symbols.push_back(l.substr(sp + 1));
    }
    CHECK(symbols == std::vector<std::string>{"keel_module_entry"});
    auto needed = run({"ldd", lib});
    CHECK(needed.out.find("libkeel") == std::string::npos);
    auto undefined = run({"nm", "-D", "--undefined-only", "-C", lib});
    CHECK(undefined.out.find("keel::") == std::string::npos);
  }
}
