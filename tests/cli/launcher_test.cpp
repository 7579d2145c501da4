// `keel` links only what `keel exec` needs: unpacking packages (libarchive, which brings
// libxml2, ICU, nettle, lzma, zstd...) and fetching marketplaces (Poco, OpenSSL's TLS) are
// keel-manage's, which `keel plugin ...` and `keel trust ...` exec from beside keel with the
// same argv: same output, same exit codes.
#include <keel/common/process.hpp>

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using keel::common::ProcessOptions;
using keel::common::ProcessResult;
using keel::test::TempDir;

namespace {

const fs::path kKeel = KEEL_EXE;
const fs::path kManage = KEEL_MANAGE_EXE;

ProcessResult run(std::vector<std::string> argv, const fs::path& home) {
  ProcessOptions o;
  o.argv = std::move(argv);
  o.env = {{"KEEL_HOME", home.string()}, {"HOME", home.string()}};
  o.timeout = std::chrono::seconds(60);
  return keel::common::run_process(o);
}

std::vector<std::string> needed(const fs::path& exe) {
  auto r = run({"readelf", "-d", exe.string()}, fs::temp_directory_path());
  REQUIRE(r.exit_code == 0);
  std::vector<std::string> out;
  std::istringstream in(r.stdout_buf.str());
  for (std::string line; std::getline(in, line);)
    if (line.find("(NEEDED)") != std::string::npos) out.push_back(line);
  return out;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& what) {
  for (auto& l : lines)
    if (l.find(what) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("keel needs neither libarchive nor Poco nor OpenSSL's TLS; keel-manage does", "[cli][ldd]") {
  auto keel = needed(kKeel);
  REQUIRE(any_contains(keel, "libc.so"));  // readelf really listed something
  for (auto lib : {"libarchive", "libPoco", "libssl", "libxml2", "libicu"}) {
    INFO(lib);
    CHECK_FALSE(any_contains(keel, lib));
  }
  auto manage = needed(kManage);
  CHECK(any_contains(manage, "libarchive"));
  CHECK(any_contains(manage, "libPocoNet"));
}

TEST_CASE("keel plugin and keel trust answer exactly as keel-manage does", "[cli][manage]") {
  TempDir home{"keel-cli"};
  const std::vector<std::vector<std::string>> commands{
      {"trust", "list"},       {"trust"},           {"trust", "--help"},  {"trust", "remove", "nobody"},
      {"trust", "add"},        {"plugin"},          {"plugin", "--help"}, {"plugin", "list"},
      {"plugin", "list", "--json"}, {"plugin", "bogus"}, {"plugin", "--bogus"}, {"plugin", "marketplace", "list"}};
  for (auto& args : commands) {
    std::vector<std::string> via_keel{kKeel.string()}, direct{kManage.string()};
    via_keel.insert(via_keel.end(), args.begin(), args.end());
    direct.insert(direct.end(), args.begin(), args.end());
    auto a = run(via_keel, home.path());
    auto b = run(direct, home.path());
    INFO("keel " << keel::common::shell_join(args) << "\nstdout:\n" << a.stdout_buf.str() << "\nstderr:\n"
                 << a.stderr_buf.str());
    CHECK(a.exit_code == b.exit_code);
    CHECK(a.stdout_buf.str() == b.stdout_buf.str());
    CHECK(a.stderr_buf.str() == b.stderr_buf.str());
  }
  CHECK(run({kKeel.string(), "trust", "list"}, home.path()).exit_code == 0);
  CHECK(run({kKeel.string(), "plugin"}, home.path()).exit_code == 2);
  CHECK(run({kKeel.string(), "trust", "remove", "nobody"}, home.path()).exit_code == 1);
}

TEST_CASE("keel finds keel-manage beside its real executable, and says so when it is missing", "[cli][manage]") {
  TempDir dir{"keel-cli"};
  // Through a symbolic link elsewhere: /proc/self/exe is the real keel, beside keel-manage.
  fs::create_symlink(kKeel, dir.path() / "keel");
  auto linked = run({(dir.path() / "keel").string(), "trust", "list"}, dir.path());
  INFO(linked.stderr_buf.str());
  CHECK(linked.exit_code == 0);
  CHECK(linked.stdout_buf.str().find("no trusted keys") != std::string::npos);

  // A copy of keel alone: exec still works, the management commands fail with a reason.
  fs::create_directories(dir.path() / "alone");
  fs::copy_file(kKeel, dir.path() / "alone" / "keel");
  auto version = run({(dir.path() / "alone" / "keel").string(), "--version"}, dir.path());
  CHECK(version.exit_code == 0);
  auto alone = run({(dir.path() / "alone" / "keel").string(), "trust", "list"}, dir.path());
  INFO(alone.stderr_buf.str());
  CHECK(alone.exit_code == 1);
  CHECK(alone.stderr_buf.str().find("keel-manage") != std::string::npos);
}
