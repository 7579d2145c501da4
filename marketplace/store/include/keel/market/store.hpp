// The local store under $KEEL_HOME: where trusted keys, modules, packages and indexes live,
// what an installed module looks like, and how its library is checked before it is loaded.
#pragma once

#include <keel/market/minisign.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::market {

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct StoreLayout {
  std::filesystem::path home;
  std::filesystem::path config() const { return home / "config.toml"; }
  std::filesystem::path trusted_keys() const { return home / "trusted_keys"; }
  std::filesystem::path marketplaces() const { return home / "marketplaces"; }
  std::filesystem::path packages() const { return home / "store" / "packages"; }
  std::filesystem::path modules() const { return home / "modules"; }
  std::filesystem::path sessions() const { return home / "sessions"; }
  void create_directories() const;
};

struct ModuleManifest {
  std::string name, version, kind, description, library;
  std::uint32_t abi_major = 1, abi_minor = 0;
  // Throws StoreError naming `source` and the field at fault.
  static ModuleManifest parse(std::string_view json_text, const std::string& source);
  static ModuleManifest load(const std::filesystem::path& path);
};

// Names are [a-z0-9][a-z0-9._-]*, at most 64 characters: they become folder names.
bool valid_module_name(std::string_view name);

// Semantic versions: "1.2.3", "1.2.3-beta.1". Returns <0, 0, >0.
int compare_versions(std::string_view a, std::string_view b);
bool valid_version(std::string_view v);

struct InstalledModule {
  ModuleManifest manifest;
  std::filesystem::path dir;  // modules/<name>/<version>
  std::filesystem::path library() const { return dir / manifest.library; }
  std::filesystem::path signature() const { return dir / (manifest.library + ".minisig"); }
};

struct DiscoveryProblem {
  std::filesystem::path path;
  std::string name;  // module name if known
  std::string reason;
};

// One version per module: the pinned one (modules/<name>/pinned holds a version) or the
// highest. Unreadable manifests are reported as problems, never thrown.
std::vector<InstalledModule> discover_modules(const std::filesystem::path& modules_dir,
                                              std::vector<DiscoveryProblem>& problems);

// Keys in trusted_keys/*.pub. A file that does not parse is reported, not fatal.
std::vector<PublicKey> load_trusted_keys(const std::filesystem::path& dir, std::vector<std::string>& warnings);

struct VerifiedLibrary {
  std::vector<std::uint8_t> bytes;  // exactly the bytes that were verified; load these
  std::string signer;               // key id
  std::string sha256;
};

// Reads the library once, verifies its .minisig against the trusted keys, and checks that
// the signed trusted comment binds this module's name, version and content hash.
// Throws StoreError with a one-line reason.
VerifiedLibrary verify_module_library(const InstalledModule& module, const std::vector<PublicKey>& trusted,
                                      bool allow_legacy = false);

// Trusted comment that binds a module library or a package to its name, version, content.
std::string module_binding(const ModuleManifest& m, std::string_view sha256);
std::string package_binding(const ModuleManifest& m, std::string_view sha256);

// --- packages (.keelpkg) ---

struct PackInput {
  std::filesystem::path manifest, library;
  std::vector<std::filesystem::path> assets;
};
// Signs the library (binding name, version, sha256), writes the archive, signs the archive
// (PKG.minisig beside it). Returns the package path.
std::filesystem::path pack_module(const PackInput& in, const SecretKey& key, const std::filesystem::path& out);

struct InstallResult {
  InstalledModule module;
  std::string signer;
  bool replaced = false;  // an identical name+version was already installed
};
// Verifies PKG.minisig (trusted key, binding to the archive's sha256), unpacks into a fresh
// directory, verifies the library inside, and only then moves it into modules/<name>/<version>.
InstallResult install_package(const std::filesystem::path& package, const StoreLayout& store,
                              const std::vector<PublicKey>& trusted, bool allow_legacy = false);

}  // namespace keel::market
