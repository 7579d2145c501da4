// Signatures of installed modules, checked by the real module host before a library is
// mapped: untrusted keys, missing or mangled signatures, trusted comments that bind another
// name, version or content, legacy signatures; signatures made by the stock minisign CLI load;
// signatures made by keel verify under `minisign -V`; and a flipped byte in an installed
// library makes the real `keel modules` refuse exactly that module.
#include "host_fixture.hpp"

#include <keel/market/sha256.hpp>

#include <boost/json/parse.hpp>

using namespace keel;
using namespace keel::itest;
namespace mods = keel::test_modules;

namespace {

std::string sha256sum(const fs::path& file) {  // the coreutils tool, not keel's code
  auto r = run({"sha256sum", file.string()});
  REQUIRE(r.exit_code == 0);
  return r.out.substr(0, 64);
}

std::string binding(const std::string& name, const std::string& version, const std::string& sha) {
  return "keel-module name=" + name + " version=" + version + " sha256=" + sha;
}

// A home with one trusted keel-pack key and echo-tool installed properly: the module that
// must keep loading whatever happens to its neighbours.
struct SigHome {
  TempDir tmp{"keel-itest"};
  fs::path home = tmp / "home";
  KeyFiles author = keel_pack_keygen(tmp.path(), "author");
  SigHome() {
    trust(home, author.pub);
    keel_pack_install(home, keel_pack_pack(mods::echo_tool, author, tmp / "packages"));
  }
  // Installs abi-current by hand with the given signature (nullopt: none).
  fs::path install_probe(const std::optional<std::string>& sig) {
    return hand_install(home, manifest_as(mods::abi_current, "abi-current", "1.0.0"), mods::abi_current.library, sig);
  }
  fs::path probe_lib() const { return home / "modules/abi-current/1.0.0/libkeel-test-abi-current.so"; }
  fs::path probe_sig() const { return home / "modules/abi-current/1.0.0/libkeel-test-abi-current.so.minisig"; }
  // Signs the installed probe library with the stock minisign CLI, in place.
  RunResult minisign_sign(const KeyFiles& key, const std::string& trusted_comment, bool legacy = false) {
    std::vector<std::string> argv{kMinisignExe, "-S", "-s", key.sec.string(), "-m", probe_lib().string(), "-t",
                                  trusted_comment};
    if (legacy) argv.insert(argv.begin() + 1, "-l");
    auto r = run(argv);
    INFO(r.describe());
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::is_regular_file(probe_sig()));
    return r;
  }
};

void expect_neighbour_loads(LoadedHome& h) {
  auto echo = h.info("echo-tool");
  CHECK(echo.state == ModuleState::loaded);
  CHECK(h.bus.has_server("tool.echo"));
}

market::Signature keel_sign(const market::SecretKey& key, const fs::path& file, const std::string& comment) {
  return market::sign(key, as_bytes(read_file(file)), comment);
}

}  // namespace

TEST_CASE("module signatures are checked before loading", "[integration][signatures]") {
  REQUIRE(fs::exists(kMinisignExe));
  SigHome fx;
  const std::string probe_sha = sha256sum(mods::abi_current.library);

  SECTION("a library signed by a key that is not trusted is refused") {
    auto stranger = market::generate_keypair();
    fx.install_probe(keel_sign(stranger.secret_key, mods::abi_current.library,
                               binding("abi-current", "1.0.0", probe_sha)).to_file());
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "not trusted");
    CHECK(h.info("abi-current").reason.find(stranger.public_key.key_id_hex()) != std::string::npos);
    expect_neighbour_loads(h);
  }
  SECTION("a library without a .minisig is refused") {
    fx.install_probe(std::nullopt);
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "libkeel-test-abi-current.so.minisig");
    expect_neighbour_loads(h);
  }
  SECTION("a .minisig that is not a signature is refused") {
    fx.install_probe("this is not a minisign signature\n");
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "signature");
    expect_neighbour_loads(h);
  }
  SECTION("another library's signature is refused") {
    auto echo_dir = fx.home / "modules/echo-tool/1.0.0";
    fx.install_probe(read_file(echo_dir / "libkeel-test-echo-tool.so.minisig"));
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "signature check failed");
    expect_neighbour_loads(h);
  }
  SECTION("an edited trusted comment is refused") {
    auto key = market::SecretKey::load(fx.author.sec);
    auto text = keel_sign(key, mods::abi_current.library, binding("abi-current", "1.0.0", probe_sha)).to_file();
    auto at = text.find("\ntrusted comment: ");
    REQUIRE(at != std::string::npos);
    text.insert(text.find('\n', at + 1), " pinned=yes");
    fx.install_probe(text);
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "signature check failed");
    expect_neighbour_loads(h);
  }
  SECTION("an edited untrusted comment changes nothing (minisign does not authenticate it)") {
    auto key = market::SecretKey::load(fx.author.sec);
    auto text = keel_sign(key, mods::abi_current.library, binding("abi-current", "1.0.0", probe_sha)).to_file();
    REQUIRE(text.rfind("untrusted comment: ", 0) == 0);
    text.insert(text.find('\n'), " (edited)");
    fx.install_probe(text);
    LoadedHome h(fx.home);
    INFO(h.all_log());
    CHECK(h.info("abi-current").state == ModuleState::loaded);
  }
  SECTION("a stock minisign signature whose trusted comment names another version is refused") {
    auto key = minisign_keygen(fx.tmp.path(), "minisign-author");
    trust(fx.home, key.pub);
    fx.install_probe(std::nullopt);
    fx.minisign_sign(key, binding("abi-current", "9.9.9", probe_sha));
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "version 9.9.9");
    CHECK(h.info("abi-current").reason.find("1.0.0") != std::string::npos);
    expect_neighbour_loads(h);
  }
  SECTION("a trusted comment naming another module is refused") {
    auto key = minisign_keygen(fx.tmp.path(), "minisign-author");
    trust(fx.home, key.pub);
    fx.install_probe(std::nullopt);
    fx.minisign_sign(key, binding("echo-tool", "1.0.0", probe_sha));
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "'echo-tool'");
    expect_neighbour_loads(h);
  }
  SECTION("a trusted comment binding other content is refused") {
    auto key = minisign_keygen(fx.tmp.path(), "minisign-author");
    trust(fx.home, key.pub);
    fx.install_probe(std::nullopt);
    fx.minisign_sign(key, binding("abi-current", "1.0.0", sha256sum(mods::echo_tool.library)));
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "sha256");
    expect_neighbour_loads(h);
  }
  SECTION("minisign's default trusted comment (no keel binding) is refused") {
    auto key = minisign_keygen(fx.tmp.path(), "minisign-author");
    trust(fx.home, key.pub);
    fx.install_probe(std::nullopt);
    auto r = run({kMinisignExe, "-S", "-s", key.sec.string(), "-m", fx.probe_lib().string()});
    REQUIRE(r.exit_code == 0);
    LoadedHome h(fx.home);
    check_refusal_line(h, "abi-current", "binding");
    expect_neighbour_loads(h);
  }
  SECTION("a legacy (unhashed) minisign signature is refused unless legacy signatures are allowed") {
    auto key = minisign_keygen(fx.tmp.path(), "minisign-author");
    trust(fx.home, key.pub);
    fx.install_probe(std::nullopt);
    fx.minisign_sign(key, binding("abi-current", "1.0.0", probe_sha), /*legacy=*/true);
    REQUIRE(market::Signature::load(fx.probe_sig()).algorithm == market::SignatureAlgorithm::Legacy);
    {
      LoadedHome h(fx.home);
      check_refusal_line(h, "abi-current", "legacy");
      expect_neighbour_loads(h);
    }
    LoadedHome allowed(fx.home, /*allow_legacy=*/true);
    INFO(allowed.all_log());
    CHECK(allowed.info("abi-current").state == ModuleState::loaded);
  }
  SECTION("a library signed by the stock minisign CLI with the binding comment loads") {
    auto key = minisign_keygen(fx.tmp.path(), "minisign-author");
    trust(fx.home, key.pub);
    fx.install_probe(std::nullopt);
    fx.minisign_sign(key, binding("abi-current", "1.0.0", probe_sha));
    LoadedHome h(fx.home);
    INFO(h.all_log());
    auto m = h.info("abi-current");
    CHECK(m.state == ModuleState::loaded);
    CHECK(m.signer == market::PublicKey::load(key.pub).key_id_hex());
    auto r = call_tool(h.bus, "abi-current", "{}");
    CHECK(r.status == KEEL_OK);
    expect_neighbour_loads(h);
  }
  SECTION("a library signed by keel-pack verifies under the stock `minisign -V`") {
    auto dir = fx.home / "modules/echo-tool/1.0.0";
    auto lib = dir / "libkeel-test-echo-tool.so";
    auto r = run({kMinisignExe, "-V", "-p", fx.author.pub.string(), "-m", lib.string()});
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Trusted comment: " + binding("echo-tool", "1.0.0", sha256sum(lib))) != std::string::npos);
    // ... and fails there too once the library changes.
    flip_byte(lib);
    auto bad = run({kMinisignExe, "-V", "-p", fx.author.pub.string(), "-m", lib.string()});
    CHECK(bad.exit_code != 0);
  }
}

TEST_CASE("a library that fails verification is never mapped", "[integration][signatures]") {
  TempDir tmp{"keel-itest"};
  fs::path home = tmp / "home";
  auto key = market::generate_keypair();
  trust(home, key.public_key, "author");
  api_install(home, mods::ctor_canary, key.secret_key, tmp / "pkg");
  fs::path lib = home / "modules/ctor-canary/1.0.0/libkeel-test-ctor-canary.so";
  REQUIRE(fs::is_regular_file(lib));
  fs::path canary_dir = tmp / "canary";
  fs::create_directories(canary_dir);
  fs::path mark = canary_dir / "ctor-canary.ran";
  ::setenv("KEEL_TEST_CANARY_DIR", canary_dir.c_str(), 1);
  struct Unset {
    ~Unset() { ::unsetenv("KEEL_TEST_CANARY_DIR"); }
  } unset;

  SECTION("the untouched library is mapped: the canary works") {
    LoadedHome h(home);
    INFO(h.all_log());
    CHECK(h.info("ctor-canary").state == ModuleState::loaded);
    CHECK(fs::exists(mark));
  }
  SECTION("bytes appended to a library (still a valid ELF file): refused before mapping") {
    {
      std::ofstream out(lib, std::ios::binary | std::ios::app);
      out << std::string(64, '\0') << "appended by an attacker";
    }
    LoadedHome h(home);
    check_refusal_line(h, "ctor-canary", "signature");
    CHECK_FALSE(fs::exists(mark));
  }
  SECTION("one byte flipped: refused before mapping") {
    flip_byte(lib);
    LoadedHome h(home);
    check_refusal_line(h, "ctor-canary", "signature");
    CHECK_FALSE(fs::exists(mark));
  }
  SECTION("no signature: refused before mapping") {
    fs::remove(lib.string() + ".minisig");
    LoadedHome h(home);
    check_refusal_line(h, "ctor-canary", "minisig");
    CHECK_FALSE(fs::exists(mark));
  }
}
