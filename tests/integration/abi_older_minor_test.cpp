// "An older minor loads": this executable links a second copy of the kernel compiled with
// KEEL_ABI_MINOR=1 (see CMakeLists.txt), i.e. a keel one minor version ahead of the modules
// built today. A module built for ABI 1.0 must load under it, see the host's 1.1 in the entry
// point and the host function table, and work; a module built for 1.5 is still refused.
#include "host_fixture.hpp"

using namespace keel;
using namespace keel::itest;
namespace mods = keel::test_modules;

static_assert(KEEL_ABI_MAJOR == 1 && KEEL_ABI_MINOR == 1, "this test must be built against the ABI 1.1 kernel");

TEST_CASE("a host speaking ABI 1.1 loads modules built for 1.0 and refuses 1.5", "[integration][abi]") {
  TempDir tmp{"keel-itest"};
  fs::path home = tmp / "home";
  auto key = market::generate_keypair();
  trust(home, key.public_key, "author");
  for (auto& m : {mods::abi_current, mods::echo_tool, mods::abi_newer_minor}) api_install(home, m, key.secret_key, tmp / "pkg");

  LoadedHome h(home);
  INFO("host log:\n" << h.all_log());

  auto older = h.info("abi-current");
  CHECK(older.state == ModuleState::loaded);
  CHECK(older.reason.empty());
  auto p = call_tool(h.bus, "abi-current", "{}");
  REQUIRE(p.status == KEEL_OK);
  CHECK(p.body.at("module_abi") == boost::json::array{1, 0});      // what it was built for
  CHECK(p.body.at("entry_host_abi") == boost::json::array{1, 1});  // what the host told the entry point
  CHECK(p.body.at("host_api_abi") == boost::json::array{1, 1});    // the host function table it got

  CHECK(h.info("echo-tool").state == ModuleState::loaded);
  auto r = call_tool(h.bus, "echo", R"({"text":"older minor"})");
  CHECK(r.status == KEEL_OK);
  CHECK(r.body.at("success").as_bool());

  check_refusal_line(h, "abi-newer-minor", "upgrade keel");
  CHECK(h.info("abi-newer-minor").reason.find("1.1") != std::string::npos);
}
