// A publisher (key, packages, signed index in a folder) and a user (a temporary KEEL_HOME
// trusting that key), for marketplace lifecycle and attack tests. Everything is real: real
// minisign signatures, real archives, the real echo-tool module library.
#pragma once

#include <keel/abi.h>
#include <keel/market/archive.hpp>
#include <keel/market/binding.hpp>
#include <keel/market/index.hpp>
#include <keel/market/plugins.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>

#include <keel_test_modules.hpp>

#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace keel::test {

namespace fs = std::filesystem;
using namespace keel::market;

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline SystemTime now() { return std::chrono::system_clock::now(); }
inline SystemTime days(int n) { return now() + std::chrono::hours(24) * n; }

inline std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct PackageSpec {
  std::string name = "echo-tool";
  std::string version = "1.0.0";
  std::vector<Dependency> dependencies;
  Permissions permissions;
  Platform platform;
  AbiRange abi{"1.0", "1.*"};
  std::size_t padding = 0;  // bytes of incompressible asset, to make big packages

  PackageSpec(std::string n = "echo-tool", std::string v = "1.0.0") : name(std::move(n)), version(std::move(v)) {}
  PackageSpec& deps(std::vector<Dependency> d) { return dependencies = std::move(d), *this; }
  PackageSpec& perms(Permissions p) { return permissions = std::move(p), *this; }
  PackageSpec& on(Platform p) { return platform = std::move(p), *this; }
  PackageSpec& kernel_abi(AbiRange r) { return abi = std::move(r), *this; }
  PackageSpec& pad(std::size_t n) { return padding = n, *this; }
};

// The marketplace folder a publisher serves.
class Publisher {
 public:
  explicit Publisher(fs::path dir, std::string name = "test")
      : dir_(std::move(dir)), work_(dir_.parent_path() / (dir_.filename().string() + "-work")), name_(std::move(name)) {
    fs::create_directories(dir_);
    fs::create_directories(work_);
    key_ = generate_keypair();
  }

  const KeyPair& key() const { return key_; }
  const fs::path& dir() const { return dir_; }
  std::vector<IndexPackage>& entries() { return entries_; }

  // Packs (library signed, package signed) into the folder; echo-tool uses the real
  // test module library, other names get a small stand-in library.
  IndexPackage& add(const PackageSpec& s, const SecretKey* signer = nullptr) {
    const SecretKey& key = signer ? *signer : key_.secret_key;
    auto pkg_work = work_ / (s.name + "-" + s.version);
    fs::create_directories(pkg_work);
    fs::path lib;
    std::string lib_name;
    if (s.name == "echo-tool") {
      lib = keel::test_modules::echo_tool.library;
      lib_name = fs::path(lib).filename().string();
    } else {
      lib_name = "lib" + s.name + ".so";
      lib = pkg_work / lib_name;
      write_text(lib, "stand-in library for " + s.name + " " + s.version + "\n");
    }
    write_text(pkg_work / "module.json", R"({"name": ")" + s.name + R"(", "version": ")" + s.version +
                                             R"(", "kind": "tool", "description": "test package )" + s.name +
                                             R"(", "library": ")" + lib_name + R"(", "abi": {"major": 1, "minor": 0}})");
    PackInput in{pkg_work / "module.json", lib, {}};
    if (s.padding) {
      std::string pad(s.padding, '\0');
      std::mt19937_64 rng(42);
      for (auto& c : pad) c = static_cast<char>(rng());
      write_text(pkg_work / "padding.bin", pad);
      in.assets.push_back(pkg_work / "padding.bin");
    }
    auto pkg = dir_ / (s.name + "-" + s.version + ".keelpkg");
    pack_module(in, key, pkg);
    IndexPackage e;
    e.name = s.name;
    e.version = s.version;
    e.kind = "tool";
    e.description = "test package " + s.name;
    e.publisher = key.key_id_hex();
    e.sha256 = sha256_file_hex(pkg);
    e.size = fs::file_size(pkg);
    e.file = pkg.filename().string();
    e.abi = s.abi;
    e.platform = s.platform;
    e.dependencies = s.dependencies;
    e.permissions = s.permissions;
    entries_.push_back(e);
    return entries_.back();
  }

  IndexPackage* find(const std::string& name, const std::string& version) {
    for (auto& e : entries_)
      if (e.name == name && e.version == version) return &e;
    return nullptr;
  }

  // Writes index.json + index.json.minisig, signed by `signer` (default: the publisher).
  void publish(std::uint64_t index_version, SystemTime expires = days(30), const SecretKey* signer = nullptr) {
    Index idx;
    idx.name = name_;
    idx.index_version = index_version;
    idx.generated = format_rfc3339(now());
    idx.expires = format_rfc3339(expires);
    idx.packages = entries_;
    auto text = write_index(idx);
    const SecretKey& key = signer ? *signer : key_.secret_key;
    auto sig = sign(key, as_bytes(text), index_binding(name_, index_version, sha256_hex(as_bytes(text))));
    write_text(dir_ / "index.json", text);
    write_text(dir_ / "index.json.minisig", sig.to_file());
  }

 private:
  fs::path dir_, work_;
  std::string name_;
  KeyPair key_;
  std::vector<IndexPackage> entries_;
};

// A user's KEEL_HOME that trusts `keys`.
class Home {
 public:
  explicit Home(const fs::path& dir) : layout_{dir} { layout_.create_directories(); }
  void trust(const PublicKey& key, const std::string& name) {
    write_text(layout_.trusted_keys() / (name + ".pub"), key.to_file());
  }
  const StoreLayout& layout() const { return layout_; }
  const fs::path& path() const { return layout_.home; }

  PluginsOptions options() const {
    PluginsOptions o;
    o.keel_home = layout_.home;
    o.warn = [this](const std::string& s) { warnings.push_back(s); };
    o.note = [this](const std::string& s) { notes.push_back(s); };
    return o;
  }
  mutable std::vector<std::string> warnings, notes;

  // Which version discovery picks for `name` ("" = none).
  std::string active(const std::string& name) const {
    std::vector<DiscoveryProblem> problems;
    for (auto& m : discover_modules(layout_.modules(), problems))
      if (m.manifest.name == name) return m.manifest.version;
    return "";
  }

  // The active echo-tool verifies and its library loads and answers the ABI entry point.
  void require_loadable(const std::string& name, const std::string& version) const {
    std::vector<DiscoveryProblem> problems;
    std::vector<std::string> warn;
    auto trusted = load_trusted_keys(layout_.trusted_keys(), warn);
    bool found = false;
    for (auto& m : discover_modules(layout_.modules(), problems)) {
      if (m.manifest.name != name) continue;
      found = true;
      REQUIRE(m.manifest.version == version);
      auto verified = verify_module_library(m, trusted);
      REQUIRE(!verified.bytes.empty());
      void* h = ::dlopen(m.library().c_str(), RTLD_NOW | RTLD_LOCAL);
      REQUIRE(h != nullptr);
      using Entry = const keel_module* (*)(std::uint32_t, std::uint32_t);
      auto entry = reinterpret_cast<Entry>(::dlsym(h, KEEL_ENTRY_SYMBOL));
      REQUIRE(entry != nullptr);
      const keel_module* d = entry(KEEL_ABI_MAJOR, KEEL_ABI_MINOR);
      REQUIRE(d != nullptr);
      REQUIRE(std::string(d->name) == name);
      ::dlclose(h);
    }
    INFO("module " << name << " not discovered");
    REQUIRE(found);
  }

  std::vector<std::string> versions_on_disk(const std::string& name) const {
    std::vector<std::string> out;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(layout_.modules() / name, ec))
      if (e.is_directory() && !e.path().filename().string().starts_with(".")) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  StoreLayout layout_;
};

// Runs fn and returns the exception's message ("" if it did not throw).
template <typename F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace keel::test
