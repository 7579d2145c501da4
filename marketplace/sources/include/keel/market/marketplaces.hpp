// The marketplaces a user has added, and their cached, verified indexes:
//
//   $KEEL_HOME/marketplaces/<name>/source.json         {"location": "<dir or URL>"}
//   $KEEL_HOME/marketplaces/<name>/index.json          last index that passed every check
//   $KEEL_HOME/marketplaces/<name>/index.json.minisig  its signature
//   $KEEL_HOME/marketplaces/.state.json                highest index_version seen, per location
//
// An index is verified (trusted key, keel-index binding, sha256) before its JSON is parsed,
// refused when it has expired, and refused when its index_version is lower than the highest
// one ever seen from that location — even after the marketplace was removed and re-added.
// Keys come only from $KEEL_HOME/trusted_keys; an index never adds one.
#pragma once

#include <keel/market/index.hpp>
#include <keel/market/source.hpp>
#include <keel/market/store.hpp>

#include <memory>
#include <string>
#include <vector>

namespace keel::market {

struct MarketplaceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct MarketplaceInfo {
  std::string name, location;
  std::uint64_t index_version = 0;  // 0 when nothing is cached
  std::string expires, signer, bound_name;
  std::size_t package_count = 0;
  std::string problem;  // why the cached index cannot be used right now ("" = fine)
};

struct UpdateResult {
  MarketplaceInfo info;
  std::uint64_t previous_version = 0;  // 0 = first fetch
  std::vector<std::string> warnings;   // unknown fields, skipped entries
};

class Marketplaces {
 public:
  explicit Marketplaces(StoreLayout store, std::vector<PublicKey> trusted, bool allow_legacy = false);

  // Fetches and verifies the index first; nothing is saved unless it passes.
  UpdateResult add(const std::string& name, const std::string& location);
  UpdateResult update(const std::string& name);
  void remove(const std::string& name);
  std::vector<std::string> names() const;
  std::string location(const std::string& name) const;
  MarketplaceInfo info(const std::string& name) const;

  // The cached index, verified again against today's trusted keys and checked for expiry.
  // Throws MarketplaceError saying what to do (`keel plugin marketplace update NAME`).
  VerifiedIndex load(const std::string& name) const;
  std::unique_ptr<Source> source(const std::string& name) const;

  // Test and tooling hook: the clock used for expiry checks.
  void set_now(SystemTime now) { now_ = now; }

 private:
  std::filesystem::path dir(const std::string& name) const;
  UpdateResult fetch_and_store(const std::string& name, const std::string& location, bool is_new);
  SystemTime now() const;

  StoreLayout store_;
  std::vector<PublicKey> trusted_;
  bool allow_legacy_;
  std::optional<SystemTime> now_;
};

}  // namespace keel::market
