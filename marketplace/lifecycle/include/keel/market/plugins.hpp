// Installing, upgrading, pinning and removing plugins from marketplaces — the library behind
// `keel plugin ...`, and the embedding API:
//
//   keel::market::Plugins plugins(keel::default_keel_home());
//   plugins.install_from_marketplace("hello");         // or "hello@1.2.0"
//
// Every install: resolve dependencies (semver ranges) against the verified indexes; for each
// package, download it with a size cap equal to its declared size, check its sha256 against
// the index, check its signature (a trusted key, the publisher the index names, and a
// binding whose name, version and sha256 equal the index entry's — so a package cannot be
// swapped for another signed one), then unpack it with install_package(), which verifies
// again and moves the complete module into modules/<name>/<version> in one rename. The
// previous version stays in place, and loadable, until the new one is complete; only then
// are the other versions removed. Mutations hold $KEEL_HOME/store/.lock.
#pragma once

#include <keel/market/index.hpp>
#include <keel/market/marketplaces.hpp>
#include <keel/market/store.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace keel::market {

struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One version of one package in one marketplace.
struct CatalogEntry {
  std::string marketplace;
  IndexPackage package;
  std::string incompatibility;  // why it cannot run here ("" = it can)
  bool compatible() const { return incompatibility.empty(); }
};

struct InstalledPlugin {
  std::string name, version, kind, description;  // the active version (pinned or highest)
  std::vector<std::string> versions;             // every installed version, highest first
  std::string pinned;                            // "" = not pinned
  // From the marketplace it came from ("" when it was installed from a file).
  std::string marketplace, publisher, sha256;
  std::vector<Dependency> dependencies;
  Permissions permissions;
};

struct PlanStep {
  CatalogEntry entry;
  std::string why;       // "requested", "dependency of X (range)"
  std::string replaces;  // the version it replaces ("" = new)
};

struct InstallPlan {
  std::string name, version;           // what was asked for, resolved
  std::vector<PlanStep> steps;         // dependencies first
  std::vector<std::string> satisfied;  // "world 1.2.0 (already installed)"
  std::vector<std::string> warnings;
};

struct InstalledStep {
  std::string name, version, previous, signer;
};

struct InstallReport {
  std::vector<InstalledStep> installed;
  std::vector<std::string> notes;  // skipped, already up to date, pinned ...
};

struct PluginsOptions {
  std::filesystem::path keel_home;
  bool allow_legacy_signatures = false;
  std::function<void(const std::string&)> warn;  // unknown index fields, skipped entries, ...
  std::function<void(const std::string&)> note;  // "downloading hello 1.0.0 from acme"
  // Download progress of one package: (label, bytes so far, total bytes).
  std::function<void(const std::string& label, std::uint64_t done, std::uint64_t total)> progress;
  // Shown before anything is downloaded; return false to cancel the install.
  std::function<bool(const InstallPlan&)> confirm;
  // Test hook: called at "downloading" (after each chunk), "downloaded", "verified",
  // "installed" (the new version in place, older ones not yet removed), "done".
  std::function<void(std::string_view point)> fault;
  std::optional<SystemTime> now;  // expiry clock (tests)
};

class Plugins {
 public:
  explicit Plugins(std::filesystem::path keel_home);
  explicit Plugins(PluginsOptions options);
  ~Plugins();
  Plugins(const Plugins&) = delete;
  Plugins& operator=(const Plugins&) = delete;

  Marketplaces& marketplaces();
  const StoreLayout& store() const;

  // Every package version of every usable marketplace (an unusable one is a warning).
  std::vector<CatalogEntry> catalog();
  // One entry per package name matching `text` (name, description, kind; case-insensitive):
  // the newest version that can be installed here, or the newest at all if none can.
  std::vector<CatalogEntry> search(std::string_view text);
  // Every version of `name`, newest first. Empty if no marketplace lists it.
  std::vector<CatalogEntry> versions(std::string_view name);

  // spec: "name" (newest installable, not yanked) or "name@version" (exactly; a yanked
  // version is allowed with a warning). Throws PluginError when it cannot be resolved.
  InstallPlan plan_install(std::string_view spec);
  InstallReport install(const InstallPlan& plan);
  InstallReport install_from_marketplace(std::string_view spec);

  std::vector<InstalledPlugin> installed() const;
  std::optional<InstalledPlugin> installed(std::string_view name) const;

  // Upgrades `name` (or every plugin) to the newest installable version from the
  // marketplace it came from; pinned plugins are left alone (a note says so).
  InstallReport upgrade(std::optional<std::string> name = std::nullopt);
  // Removes every version. Refused when an installed plugin depends on it, unless `force`.
  void remove(std::string_view name, bool force = false);
  // Makes NAME@VERSION the version that loads (modules/<name>/pinned), installing it first
  // if needed; `upgrade` then leaves it alone.
  InstallReport pin(std::string_view spec);
  void unpin(std::string_view name);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Trusted keys: minisign public keys in $KEEL_HOME/trusted_keys/<name>.pub. Only the user
// adds them; nothing an index or package says ever does.
struct TrustedKey {
  std::string id;    // key id, 16 uppercase hex digits
  std::string name;  // file stem
  std::filesystem::path file;
};

class TrustStore {
 public:
  explicit TrustStore(std::filesystem::path dir);
  // Copies the key (a minisign .pub file) in as <name>.pub (default name: the key id).
  // Adding a key that is already trusted is a no-op that returns the existing entry.
  TrustedKey add(const std::filesystem::path& public_key_file, std::string name = {});
  std::vector<TrustedKey> list(std::vector<std::string>* warnings = nullptr) const;
  // By key id (case-insensitive) or name. Returns what was removed; throws if nothing matched.
  TrustedKey remove(std::string_view id_or_name);

 private:
  std::filesystem::path dir_;
};

}  // namespace keel::market
