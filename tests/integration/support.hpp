// Shared helpers of the integration tests: temporary KEEL_HOMEs, running the real keel,
// keel-pack and minisign binaries, and installing the test modules (tests/modules) the
// way an author or a user would.
#pragma once

#include "temp_dir.hpp"

#include <keel_test_modules.hpp>

#include <keel/market/archive.hpp>
#include <keel/market/minisign.hpp>
#include <keel/market/store.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace keel::itest {

namespace fs = std::filesystem;
using test_modules::TestModule;

inline const fs::path kBuildDir = KEEL_BINARY_DIR;
inline const fs::path kBuildHome = kBuildDir / "keel-home";
inline const fs::path kKeelExe = KEEL_EXE;
inline const fs::path kKeelPackExe = KEEL_PACK_EXE;
inline const std::string kMinisignExe = KEEL_MINISIGN_EXE;

using keel::test::TempDir;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const fs::path& p, const std::string& text) {
  if (!p.parent_path().empty()) fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

// Flips every bit of one byte (the middle one unless told otherwise).
inline void flip_byte(const fs::path& p, std::optional<std::size_t> offset = std::nullopt) {
  std::string bytes = read_file(p);
  REQUIRE(!bytes.empty());
  std::size_t at = offset.value_or(bytes.size() / 2);
  bytes.at(at) = static_cast<char>(~static_cast<unsigned char>(bytes[at]));
  write_file(p, bytes);
}

inline std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct RunResult {
  int exit_code = -1;
  std::string out, err;
  std::string describe() const { return "exit " + std::to_string(exit_code) + "\nstdout:\n" + out + "\nstderr:\n" + err; }
};

// Runs a real program (no shell interpretation of the arguments), stdin from /dev/null,
// with extra environment variables, killed after 25 s.
inline RunResult run(const std::vector<std::string>& argv, const std::vector<std::pair<std::string, std::string>>& env = {},
                     const fs::path& cwd = {}) {
  TempDir io{"keel-itest"};
  std::string cmd;
  if (!cwd.empty()) cmd += "cd " + shell_quote(cwd.string()) + " && ";
  cmd += "env";
  for (auto& [k, v] : env) cmd += " " + shell_quote(k + "=" + v);
  cmd += " timeout 25";
  for (auto& a : argv) cmd += " " + shell_quote(a);
  cmd += " </dev/null >" + shell_quote((io / "out").string()) + " 2>" + shell_quote((io / "err").string());
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(io / "out");
  r.err = read_file(io / "err");
  return r;
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// ---- keys ----------------------------------------------------------------------------

struct KeyFiles {
  fs::path pub, sec;
};

// A key pair made by the real keel-pack.
inline KeyFiles keel_pack_keygen(const fs::path& dir, const std::string& name) {
  KeyFiles k{dir / (name + ".pub"), dir / (name + ".key")};
  auto r = run({kKeelPackExe.string(), "keygen", "-p", k.pub.string(), "-s", k.sec.string()});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  return k;
}

// A key pair made by the stock minisign CLI, unencrypted (-W).
inline KeyFiles minisign_keygen(const fs::path& dir, const std::string& name) {
  KeyFiles k{dir / (name + ".pub"), dir / (name + ".key")};
  auto r = run({kMinisignExe, "-G", "-W", "-p", k.pub.string(), "-s", k.sec.string()});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  return k;
}

inline void trust(const fs::path& home, const fs::path& pub_file) {
  fs::create_directories(home / "trusted_keys");
  fs::copy_file(pub_file, home / "trusted_keys" / pub_file.filename(), fs::copy_options::overwrite_existing);
}

inline void trust(const fs::path& home, const market::PublicKey& key, const std::string& name) {
  write_file(home / "trusted_keys" / (name + ".pub"), key.to_file());
}

// ---- installing modules ----------------------------------------------------------------

// Packs and signs a test module with the real keel-pack; returns the .keelpkg.
inline fs::path keel_pack_pack(const TestModule& m, const KeyFiles& key, const fs::path& out_dir) {
  fs::create_directories(out_dir);
  auto r = run({kKeelPackExe.string(), "pack", "--manifest", m.manifest, "--lib", m.library, "--key", key.sec.string(),
                "-o", out_dir.string()});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
  fs::path pkg = out_dir / (std::string(m.name) + "-1.0.0.keelpkg");
  REQUIRE(fs::is_regular_file(pkg));
  return pkg;
}

inline void keel_pack_install(const fs::path& home, const fs::path& pkg) {
  auto r = run({kKeelPackExe.string(), "install", "--home", home.string(), pkg.string()});
  INFO(r.describe());
  REQUIRE(r.exit_code == 0);
}

// Packs, signs and installs with the keel::market API.
inline market::InstallResult api_install(const fs::path& home, const TestModule& m, const market::SecretKey& key,
                                         const fs::path& work_dir) {
  fs::create_directories(work_dir);
  auto pkg = market::pack_module({m.manifest, m.library, {}}, key, work_dir / (std::string(m.name) + ".keelpkg"));
  std::vector<std::string> warnings;
  auto trusted = market::load_trusted_keys(home / "trusted_keys", warnings);
  return market::install_package(pkg, market::StoreLayout{home}, trusted);
}

// Lays a module out in the store by hand, as an installer would leave it:
// modules/<name>/<version>/{module.json, <library>, <library>.minisig (if given)}.
inline fs::path hand_install(const fs::path& home, const std::string& manifest_text, const fs::path& library,
                             const std::optional<std::string>& signature_text) {
  auto manifest = market::ModuleManifest::parse(manifest_text, "module.json");
  fs::path dir = home / "modules" / manifest.name / manifest.version;
  fs::create_directories(dir);
  write_file(dir / "module.json", manifest_text);
  fs::copy_file(library, dir / manifest.library, fs::copy_options::overwrite_existing);
  if (signature_text) write_file(dir / (manifest.library + ".minisig"), *signature_text);
  return dir;
}

// A manifest like the test module's, with another name or version.
inline std::string manifest_as(const TestModule& m, const std::string& name, const std::string& version) {
  auto lib = fs::path(m.library).filename().string();
  return "{\"name\": \"" + name + "\", \"version\": \"" + version + "\", \"kind\": \"tool\", \"library\": \"" + lib +
         "\"}\n";
}

// Copies first-party modules (and the build key that signed them) from the build-tree home.
inline void copy_build_modules(const fs::path& home, const std::vector<std::string>& names) {
  fs::create_directories(home / "modules");
  for (auto& n : names) {
    INFO("first-party module " << n << " in " << kBuildHome.string());
    REQUIRE(fs::is_directory(kBuildHome / "modules" / n));
    fs::copy(kBuildHome / "modules" / n, home / "modules" / n, fs::copy_options::recursive);
  }
  for (auto& e : fs::directory_iterator(kBuildHome / "trusted_keys"))
    if (e.path().extension() == ".pub") trust(home, e.path());
}

// Every path under `root` (relative), for "nothing else was written" checks.
inline std::set<std::string> tree(const fs::path& root) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec))
    out.insert(fs::relative(it->path(), root).string());
  return out;
}

}  // namespace keel::itest
