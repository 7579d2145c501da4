// Installing .keelpkg packages through keel::market::install_package (and the real
// keel-pack): packages that are properly signed but carry a hostile archive entry ('../x',
// an absolute path, a symlink, a hard link, a device node, a FIFO, 100,000 entries) are
// refused, nothing is written outside the target and nothing is installed; tampered, unsigned
// or foreign-signed packages are refused too. The same builder without the hostile entry
// makes a package that installs and loads, so each refusal is the hostile entry's doing.
#include "host_fixture.hpp"

#include <keel/market/sha256.hpp>

#include <archive.h>
#include <archive_entry.h>

using namespace keel;
using namespace keel::itest;
namespace mods = keel::test_modules;

namespace {

struct Entry {
  enum Type { file, dir, symlink, hardlink, chardev, blockdev, fifo };
  std::string name;
  Type type = file;
  std::string data;  // file contents
  std::string link;  // symlink / hardlink target
};

la_ssize_t append_cb(struct archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// A gzip-compressed pax tar holding exactly `entries`, names untouched.
std::string make_tar_gz(const std::vector<Entry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
  REQUIRE(archive_write_open(a, &out, nullptr, append_cb, nullptr) == ARCHIVE_OK);
  for (auto& en : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, en.name.c_str());
    archive_entry_set_perm(e, en.type == Entry::dir ? 0755 : 0644);
    archive_entry_set_mtime(e, 0, 0);
    switch (en.type) {
      case Entry::file:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(en.data.size()));
        break;
      case Entry::dir: archive_entry_set_filetype(e, AE_IFDIR); break;
      case Entry::symlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, en.link.c_str());
        break;
      case Entry::hardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, en.link.c_str());
        archive_entry_set_size(e, 0);
        break;
      case Entry::chardev:
        archive_entry_set_filetype(e, AE_IFCHR);
        archive_entry_set_rdevmajor(e, 1);
        archive_entry_set_rdevminor(e, 3);
        break;
      case Entry::blockdev:
        archive_entry_set_filetype(e, AE_IFBLK);
        archive_entry_set_rdevmajor(e, 8);
        archive_entry_set_rdevminor(e, 0);
        break;
      case Entry::fifo: archive_entry_set_filetype(e, AE_IFIFO); break;
    }
    INFO("writing entry " << en.name);
    REQUIRE(archive_write_header(a, e) >= ARCHIVE_WARN);
    if (en.type == Entry::file && !en.data.empty())
      REQUIRE(archive_write_data(a, en.data.data(), en.data.size()) == static_cast<la_ssize_t>(en.data.size()));
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

struct PkgHome {
  TempDir tmp{"keel-itest"};
  fs::path home = tmp / "home";
  market::KeyPair key = market::generate_keypair();
  market::StoreLayout store{home};
  std::string manifest_text = manifest_as(mods::abi_current, "abi-current", "1.0.0");
  market::ModuleManifest manifest = market::ModuleManifest::parse(manifest_text, "module.json");
  std::string lib = read_file(mods::abi_current.library);

  PkgHome() {
    trust(home, key.public_key, "author");
    store.create_directories();
  }
  std::vector<market::PublicKey> trusted() const {
    std::vector<std::string> warnings;
    return market::load_trusted_keys(store.trusted_keys(), warnings);
  }
  // The three members of a real package, the library properly signed.
  std::vector<Entry> good_members(const std::string& library_bytes) const {
    auto lib_sig = market::sign(key.secret_key, as_bytes(library_bytes),
                                market::module_binding(manifest, market::sha256_hex(as_bytes(library_bytes))));
    return {{"module.json", Entry::file, manifest_text, ""},
            {manifest.library, Entry::file, library_bytes, ""},
            {manifest.library + ".minisig", Entry::file, lib_sig.to_file(), ""}};
  }
  // Writes the archive and a proper package signature beside it (by `signer`).
  fs::path write_signed(const std::string& name, const std::string& archive, const market::SecretKey& signer) {
    fs::path pkg = tmp / (name + ".keelpkg");
    write_file(pkg, archive);
    auto sig = market::sign(signer, as_bytes(archive), market::package_binding(manifest, market::sha256_hex(as_bytes(archive))));
    write_file(fs::path(pkg.string() + ".minisig"), sig.to_file());
    return pkg;
  }
  fs::path write_signed(const std::string& name, const std::string& archive) {
    return write_signed(name, archive, key.secret_key);
  }
};

// install_package must refuse `pkg` with a message containing `reason_part`, and leave
// every file under the temporary root as it was: nothing outside, nothing installed.
void expect_refused(PkgHome& fx, const fs::path& pkg, const std::string& reason_part) {
  auto before = tree(fx.tmp.path());
  std::string message;
  try {
    market::install_package(pkg, fx.store, fx.trusted());
    FAIL("the package was installed");
  } catch (const market::StoreError& e) {
    message = e.what();
  }
  INFO("refusal: " << message);
  CHECK(message.find(reason_part) != std::string::npos);
  CHECK(message.find(pkg.filename().string()) != std::string::npos);
  CHECK(message.find('\n') == std::string::npos);
  auto after = tree(fx.tmp.path());
  std::vector<std::string> added, removed;
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(), std::back_inserter(added));
  std::set_difference(before.begin(), before.end(), after.begin(), after.end(), std::back_inserter(removed));
  INFO("added: " << Catch::Detail::stringify(added) << "\nremoved: " << Catch::Detail::stringify(removed));
  CHECK(added.empty());
  CHECK(removed.empty());
  CHECK(fs::is_empty(fx.store.modules()));
}

}  // namespace

TEST_CASE("the package builder makes packages that install and load", "[integration][packages]") {
  PkgHome fx;
  auto pkg = fx.write_signed("good", make_tar_gz(fx.good_members(fx.lib)));
  auto result = market::install_package(pkg, fx.store, fx.trusted());
  CHECK(result.module.manifest.name == "abi-current");
  CHECK(fs::is_regular_file(fx.home / "modules/abi-current/1.0.0/libkeel-test-abi-current.so"));
  LoadedHome h(fx.home);
  INFO(h.all_log());
  CHECK(h.info("abi-current").state == ModuleState::loaded);
}

TEST_CASE("hostile archive entries in a properly signed package are refused", "[integration][packages]") {
  PkgHome fx;
  const std::string outside = (fx.tmp / "outside").string();
  struct Case {
    const char* what;
    std::vector<Entry> extra;
    std::string reason;  // part of the message
  };
  std::vector<Case> cases = {
      {"../x", {{"../x", Entry::file, "escaped\n", ""}}, "'../x'"},
      {"../../../x deep", {{"../../../x", Entry::file, "escaped\n", ""}}, "'../../../x'"},
      {"a/../../x", {{"assets/../../x", Entry::file, "escaped\n", ""}}, ".."},
      {"absolute path", {{outside + "-abs", Entry::file, "escaped\n", ""}}, outside + "-abs"},
      {"symlink out", {{"assets", Entry::symlink, "", outside}, {"assets/pwn", Entry::file, "escaped\n", ""}}, "'assets'"},
      {"symlink to /etc/passwd", {{"passwd", Entry::symlink, "", "/etc/passwd"}}, "'passwd'"},
      {"hard link", {{"hl", Entry::hardlink, "", "/etc/passwd"}}, "'hl'"},
      {"character device", {{"null", Entry::chardev, "", ""}}, "'null'"},
      {"block device", {{"sda", Entry::blockdev, "", ""}}, "'sda'"},
      {"fifo", {{"pipe", Entry::fifo, "", ""}}, "'pipe'"},
      {"a second module.json", {{"module.json", Entry::file, manifest_as(mods::echo_tool, "echo-tool", "1.0.0"), ""}},
       "module.json"},
  };
  for (auto& c : cases) {
    DYNAMIC_SECTION("entry: " << c.what) {
      for (bool first : {false, true}) {  // after the real members, and before them
        auto members = fx.good_members(fx.lib);
        if (first) members.insert(members.begin(), c.extra.begin(), c.extra.end());
        else members.insert(members.end(), c.extra.begin(), c.extra.end());
        auto pkg = fx.write_signed(std::string("hostile-") + (first ? "first" : "last"), make_tar_gz(members));
        expect_refused(fx, pkg, c.reason);
      }
      CHECK_FALSE(fs::exists(fx.tmp / "x"));
      CHECK_FALSE(fs::exists(fx.home / "x"));
      CHECK_FALSE(fs::exists(outside + "-abs"));
      CHECK_FALSE(fs::exists(fs::path(outside) / "pwn"));
    }
  }
}

TEST_CASE("a signed package whose manifest names a path is refused", "[integration][packages]") {
  PkgHome fx;
  for (std::string name : {"../../evil", "/tmp/evil", "Evil", ".hidden"}) {
    INFO("manifest name " << name);
    auto members = fx.good_members(fx.lib);
    members[0].data = "{\"name\": \"" + name + "\", \"version\": \"1.0.0\", \"kind\": \"tool\", \"library\": \"" +
                      fx.manifest.library + "\"}";
    auto pkg = fx.write_signed("bad-name", make_tar_gz(members));
    expect_refused(fx, pkg, "name");
  }
  CHECK_FALSE(fs::exists(fx.tmp / "evil"));
  CHECK_FALSE(fs::exists("/tmp/evil/1.0.0"));
}

TEST_CASE("a package with 100,000 entries is refused", "[integration][packages]") {
  PkgHome fx;
  auto members = fx.good_members(fx.lib);
  members.push_back({"assets", Entry::dir, "", ""});
  for (int i = 0; i < 100'000; ++i) members.push_back({"assets/f" + std::to_string(i), Entry::file, "", ""});
  auto pkg = fx.write_signed("many", make_tar_gz(members));
  expect_refused(fx, pkg, "entries");
}

TEST_CASE("a symlink packed by GNU tar is refused", "[integration][packages]") {
  PkgHome fx;
  fs::path stage = fx.tmp / "stage";
  fs::create_directories(stage);
  for (auto& m : fx.good_members(fx.lib)) write_file(stage / m.name, m.data);
  fs::create_symlink("/etc/passwd", stage / "notes.txt");
  fs::path archive = fx.tmp / "tar-out.tar.gz";
  auto r = run({"tar", "-czf", archive.string(), "-C", stage.string(), "module.json", fx.manifest.library,
                fx.manifest.library + ".minisig", "notes.txt"});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  auto bytes = read_file(archive);
  fs::remove_all(stage);
  fs::remove(archive);
  auto pkg = fx.write_signed("gnu-tar", bytes);
  expect_refused(fx, pkg, "'notes.txt'");

  // keel-pack install says so on one line and fails.
  auto cli = run({kKeelPackExe.string(), "install", "--home", fx.home.string(), pkg.string()});
  INFO(cli.describe());
  CHECK(cli.exit_code != 0);
  CHECK(lines(cli.err).size() == 1);
  CHECK(cli.err.find("notes.txt") != std::string::npos);
  CHECK(fs::is_empty(fx.store.modules()));
}

TEST_CASE("tampered, unsigned and foreign-signed packages are refused", "[integration][packages]") {
  PkgHome fx;
  auto pkg = market::pack_module({mods::abi_current.manifest, mods::abi_current.library, {}}, fx.key.secret_key,
                                 fx.tmp / "abi-current-1.0.0.keelpkg");
  fs::path sig = pkg.string() + ".minisig";

  SECTION("one byte flipped after signing") {
    flip_byte(pkg);
    expect_refused(fx, pkg, "signature");
  }
  SECTION("one byte flipped in its signature") {
    auto text = read_file(sig);
    auto line2 = text.find('\n') + 1;
    text[line2 + 20] = text[line2 + 20] == 'A' ? 'B' : 'A';
    write_file(sig, text);
    expect_refused(fx, pkg, "");
  }
  SECTION("no signature") {
    fs::remove(sig);
    expect_refused(fx, pkg, "no valid signature");
  }
  SECTION("signed by a key that is not trusted") {
    auto stranger = market::generate_keypair();
    auto bytes = read_file(pkg);
    auto s = market::sign(stranger.secret_key, as_bytes(bytes),
                          market::package_binding(fx.manifest, market::sha256_hex(as_bytes(bytes))));
    write_file(sig, s.to_file());
    expect_refused(fx, pkg, "not trusted");
  }
  SECTION("another package's signature") {
    auto other = market::pack_module({mods::echo_tool.manifest, mods::echo_tool.library, {}}, fx.key.secret_key,
                                     fx.tmp / "echo-tool-1.0.0.keelpkg");
    fs::copy_file(other.string() + ".minisig", sig, fs::copy_options::overwrite_existing);
    expect_refused(fx, pkg, "signature");
  }
  SECTION("the archive signature is fine but the library inside was changed") {
    auto members = fx.good_members(fx.lib);
    auto changed = fx.lib;
    changed[changed.size() / 2] = static_cast<char>(~static_cast<unsigned char>(changed[changed.size() / 2]));
    members[1].data = changed;  // the library, with the original library signature beside it
    auto hostile = fx.write_signed("inner-tampered", make_tar_gz(members));
    expect_refused(fx, hostile, "signature");
  }
  SECTION("the untouched package installs") {
    auto result = market::install_package(pkg, fx.store, fx.trusted());
    CHECK(result.signer == fx.key.public_key.key_id_hex());
    CHECK(fs::is_regular_file(fx.home / "modules/abi-current/1.0.0/module.json"));
  }
}
