// ABI negotiation and descriptor checks through the real module host: test modules built
// with the SDK for other ABI versions, with a lying descriptor, without an entry point...
// are each refused with one clear line naming them, while the good modules beside them
// still load and serve their tools.
#include "host_fixture.hpp"

using namespace keel;
using namespace keel::itest;
namespace mods = keel::test_modules;

namespace {

const std::vector<TestModule> kAll = {mods::echo_tool,          mods::abi_current,         mods::abi_newer_major,
                                      mods::abi_newer_minor,    mods::abi_wrong_name,      mods::no_entry,
                                      mods::abi_null_descriptor, mods::abi_tiny_descriptor, mods::abi_start_fails};

// A KEEL_HOME holding every test module, each packed, signed and installed by the real keel-pack.
struct AbiHome {
  TempDir tmp{"keel-itest"};
  fs::path home = tmp / "home";
  AbiHome() {
    auto key = keel_pack_keygen(tmp.path(), "author");
    trust(home, key.pub);
    for (auto& m : kAll) keel_pack_install(home, keel_pack_pack(m, key, tmp / "packages"));
  }
};

// Built once and shared by every test case of this file (packing nine modules takes a moment).
AbiHome& abi_home() {
  static AbiHome fx;
  return fx;
}

}  // namespace

TEST_CASE("ABI negotiation: newer major and newer minor are refused, the rest still load", "[integration][abi]") {
  static_assert(KEEL_ABI_MAJOR == 1 && KEEL_ABI_MINOR == 0, "this test assumes the host speaks ABI 1.0");
  LoadedHome h(abi_home().home);
  INFO("host log:\n" << h.all_log());
  REQUIRE(h.host->modules().size() == kAll.size());

  SECTION("a module built for a newer major version is refused") {
    check_refusal_line(h, "abi-newer-major", "major versions must match");
    auto m = h.info("abi-newer-major");
    CHECK(m.state == ModuleState::refused);
    CHECK(m.reason.find("2.0") != std::string::npos);  // what it was built for
    CHECK(m.reason.find("1.x") != std::string::npos);  // what this keel speaks
  }
  SECTION("a module built for a newer minor version is refused") {
    check_refusal_line(h, "abi-newer-minor", "upgrade keel");
    auto m = h.info("abi-newer-minor");
    CHECK(m.state == ModuleState::refused);
    CHECK(m.reason.find("1.5") != std::string::npos);
    CHECK(m.reason.find("1.0") != std::string::npos);
  }
  SECTION("a descriptor naming another module is refused") {
    check_refusal_line(h, "abi-wrong-name", "somebody-else");
    CHECK(h.info("abi-wrong-name").reason.find("'abi-wrong-name'") != std::string::npos);
    CHECK_FALSE(h.bus.has_server("tool.somebody-else"));
  }
  SECTION("a library without the entry point is refused") {
    check_refusal_line(h, "no-entry", "keel_module_entry");
    CHECK(h.info("no-entry").state == ModuleState::refused);
  }
  SECTION("an entry point returning no descriptor is refused") {
    check_refusal_line(h, "abi-null-descriptor", "no descriptor");
  }
  SECTION("a descriptor too small for its ABI is refused") {
    check_refusal_line(h, "abi-tiny-descriptor", "too small");
  }
  SECTION("a module whose start() fails is reported and serves nothing") {
    check_refusal_line(h, "abi-start-fails", "the probe was built to fail at start");
    CHECK(h.info("abi-start-fails").state == ModuleState::failed_to_start);
  }
  SECTION("the good modules load and answer over the bus") {
    auto echo = h.info("echo-tool");
    CHECK(echo.state == ModuleState::loaded);
    CHECK(echo.reason.empty());
    CHECK_FALSE(echo.signer.empty());
    REQUIRE(echo.capabilities.size() == 2);
    auto e = h.host->find_capability(KEEL_CAP_TOOL, "echo");
    REQUIRE(e);
    CHECK((e->flags & KEEL_FLAG_PARALLEL_SAFE) != 0);
    auto w = h.host->find_capability(KEEL_CAP_TOOL, "slow_write");
    REQUIRE(w);
    CHECK((w->flags & KEEL_FLAG_MUTATING) != 0);
    CHECK((w->flags & KEEL_FLAG_PARALLEL_SAFE) == 0);

    auto r = call_tool(h.bus, "echo", R"({"text":"ping"})");
    CHECK(r.status == KEEL_OK);
    auto out = boost::json::parse(r.body.at("output").as_string()).as_object();
    CHECK(out.at("text").as_string() == "ping");

    CHECK(h.info("abi-current").state == ModuleState::loaded);
    auto p = call_tool(h.bus, "abi-current", "{}");
    REQUIRE(p.status == KEEL_OK);
    CHECK(p.body.at("module_abi") == boost::json::array{1, 0});
    CHECK(p.body.at("entry_host_abi") == boost::json::array{1, 0});
    CHECK(p.body.at("host_api_abi") == boost::json::array{1, 0});
    CHECK(h.log_about("echo-tool").empty());
    CHECK(h.log_about("abi-current").empty());
  }
  SECTION("bad arguments to a good tool become an unsuccessful output, not a failure") {
    auto r = call_tool(h.bus, "echo", "{not json");
    CHECK(r.status == KEEL_OK);
    CHECK_FALSE(r.body.at("success").as_bool());
    CHECK(r.body.at("output").as_string().find("JSON") != std::string::npos);
  }
}

TEST_CASE("`keel modules` reports each ABI refusal on one line naming the module", "[integration][abi][cli]") {
  TempDir cwd{"keel-itest"};
  auto r = run({kKeelExe.string(), "modules"}, {{"KEEL_HOME", abi_home().home.string()}, {"HOME", cwd.path().string()}},
               cwd.path());
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  struct Expect {
    std::string name, prefix, reason;
  };
  std::vector<Expect> expected = {
      {"echo-tool", "loaded", ""},
      {"abi-current", "loaded", ""},
      {"abi-newer-major", "REFUSED", "major versions must match"},
      {"abi-newer-minor", "REFUSED", "upgrade keel"},
      {"abi-wrong-name", "REFUSED", "somebody-else"},
      {"no-entry", "REFUSED", "keel_module_entry"},
      {"abi-null-descriptor", "REFUSED", "no descriptor"},
      {"abi-tiny-descriptor", "REFUSED", "too small"},
      {"abi-start-fails", "FAILED", "the probe was built to fail at start"},
  };
  auto out = lines(r.out);
  for (auto& e : expected) {
    std::vector<std::string> mine;
    for (auto& l : out)
      if (l.find(" " + e.name + " ") != std::string::npos) mine.push_back(l);
    INFO("module " << e.name);
    REQUIRE(mine.size() == 1);
    CHECK(mine[0].rfind(e.prefix, 0) == 0);
    CHECK(mine[0].find(e.reason) != std::string::npos);
  }
  // The launcher also says it on stderr, one line per module that did not load.
  for (auto& e : expected) {
    std::size_t n = 0;
    for (auto& l : lines(r.err))
      if (l.find("module " + e.name + " ") != std::string::npos) ++n;
    INFO("stderr lines about " << e.name);
    CHECK(n == (e.prefix == "loaded" ? 0u : 1u));
  }
}
