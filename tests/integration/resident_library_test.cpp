// The module host loads each verified library from a memfd through its /proc/self/fd/N path.
// The dynamic loader knows libraries by path, so a library that stayed resident after its
// descriptor was closed must never be handed back for a new module that got the same
// descriptor number. This test forces exactly that reuse.
#include "host_fixture.hpp"

#include <fcntl.h>
#include <link.h>
#include <unistd.h>

using namespace keel;
using namespace keel::itest;
namespace mods = keel::test_modules;

namespace {

// The /proc/self/fd/N paths of every library mapped in this process.
std::vector<std::string> fd_mapped_libraries() {
  std::vector<std::string> out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        std::string name = info->dlpi_name ? info->dlpi_name : "";
        if (name.rfind("/proc/self/fd/", 0) == 0) static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &out);
  return out;
}

fs::path home_with(const TempDir& tmp, const std::string& name, const TestModule& m, const KeyFiles& key) {
  fs::path home = tmp / name;
  trust(home, key.pub);
  keel_pack_install(home, keel_pack_pack(m, key, tmp / ("packages-" + name)));
  return home;
}

}  // namespace

TEST_CASE("a resident library's descriptor number reused by the next module does not alias it",
          "[integration][loader]") {
  TempDir tmp{"keel-itest"};
  auto key = keel_pack_keygen(tmp.path(), "author");
  fs::path resident_home = home_with(tmp, "resident", mods::abi_resident, key);
  fs::path current_home = home_with(tmp, "current", mods::abi_current, key);

  auto before = fd_mapped_libraries();
  {
    LoadedHome h(resident_home);
    INFO("host log:\n" << h.all_log());
    REQUIRE(h.info("abi-resident").state == ModuleState::failed_to_start);
  }
  // It could not be unloaded: it is still mapped, under a path whose descriptor is closed.
  auto after = fd_mapped_libraries();
  REQUIRE(after.size() == before.size() + 1);
  std::string resident_path;
  for (auto& p : after)
    if (std::find(before.begin(), before.end(), p) == before.end()) resident_path = p;
  int resident_fd = std::stoi(resident_path.substr(std::strlen("/proc/self/fd/")));
  REQUIRE(fcntl(resident_fd, F_GETFD) == -1);

  // Fill every lower descriptor so the next one the host opens is exactly that number.
  std::vector<int> fillers;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) != resident_fd;) {
    REQUIRE(fd >= 0);
    REQUIRE(fd < resident_fd);
    fillers.push_back(fd);
  }
  ::close(resident_fd);

  {
    LoadedHome h(current_home);
    INFO("host log:\n" << h.all_log());
    auto m = h.info("abi-current");
    CHECK(m.reason.empty());
    REQUIRE(m.state == ModuleState::loaded);
    auto r = call_tool(h.bus, "abi-current", "{}");
    REQUIRE(r.status == KEEL_OK);
    CHECK(r.body.at("module").as_string() == "abi-current");
    auto now = fd_mapped_libraries();
    CHECK(std::count(now.begin(), now.end(), resident_path) == 1);  // not loaded a second time under it
  }
  for (int fd : fillers) ::close(fd);
}
