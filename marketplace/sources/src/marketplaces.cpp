#include <keel/market/archive.hpp>
#include <keel/market/marketplaces.hpp>
#include <keel/market/store_lock.hpp>

#include <keel/market/atomic_files.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>

namespace keel::market {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

constexpr std::uint64_t kMaxIndexBytes = 32u << 20;
constexpr std::uint64_t kMaxSignatureBytes = 8u << 10;
constexpr const char* kSourceFile = "source.json";
constexpr const char* kStateFile = ".state.json";

std::string as_text(const std::vector<std::uint8_t>& b) { return std::string(b.begin(), b.end()); }

struct Seen {
  std::uint64_t index_version = 0;
  std::string sha256;
};

// .state.json: {"seen": {"<location>": {"index_version": N, "sha256": "..."}}}
json::object read_state(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return {};
  auto text = read_text_file(file);
  boost::system::error_code jec;
  auto v = json::parse(text, jec);
  if (jec || !v.is_object())
    throw MarketplaceError(file.string() +
                           " is damaged, so rollback protection cannot be checked; restore it or delete it "
                           "(then every marketplace's next index is trusted as the newest)");
  return v.as_object();
}

Seen seen_for(const json::object& state, const std::string& location) {
  Seen s;
  auto* all = state.if_contains("seen");
  if (!all || !all->is_object()) return s;
  auto* e = all->as_object().if_contains(location);
  if (!e || !e->is_object()) return s;
  if (auto* v = e->as_object().if_contains("index_version"); v && v->is_int64()) s.index_version = v->as_int64();
  if (auto* v = e->as_object().if_contains("index_version"); v && v->is_uint64()) s.index_version = v->as_uint64();
  if (auto* h = e->as_object().if_contains("sha256"); h && h->is_string()) s.sha256 = h->as_string();
  return s;
}

}  // namespace

Marketplaces::Marketplaces(StoreLayout store, std::vector<PublicKey> trusted, bool allow_legacy)
    : store_(std::move(store)), trusted_(std::move(trusted)), allow_legacy_(allow_legacy) {}

SystemTime Marketplaces::now() const { return now_ ? *now_ : std::chrono::system_clock::now(); }

fs::path Marketplaces::dir(const std::string& name) const {
  if (!valid_module_name(name))
    throw MarketplaceError("invalid marketplace name '" + name + "' (use [a-z0-9][a-z0-9._-]*, at most 64 characters)");
  return store_.marketplaces() / name;
}

std::vector<std::string> Marketplaces::names() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(store_.marketplaces(), ec)) {
    auto n = e.path().filename().string();
    if (e.is_directory() && !n.starts_with(".") && fs::exists(e.path() / kSourceFile)) out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Marketplaces::location(const std::string& name) const {
  auto d = dir(name);
  std::error_code ec;
  if (!fs::exists(d / kSourceFile, ec))
    throw MarketplaceError("no marketplace named '" + name + "' (see `keel plugin marketplace list`)");
  boost::system::error_code jec;
  auto v = json::parse(read_text_file(d / kSourceFile), jec);
  if (jec || !v.is_object() || !v.as_object().contains("location") || !v.as_object().at("location").is_string())
    throw MarketplaceError((d / kSourceFile).string() + " is damaged; remove and re-add marketplace '" + name + "'");
  return std::string(v.as_object().at("location").as_string());
}

std::unique_ptr<Source> Marketplaces::source(const std::string& name) const {
  try {
    return Source::open(location(name));
  } catch (const FetchError& e) {
    throw MarketplaceError("marketplace '" + name + "': " + e.what());
  }
}

UpdateResult Marketplaces::add(const std::string& name, const std::string& location) {
  auto d = dir(name);
  store_.create_directories();
  StoreLock lock(store_.marketplaces() / ".lock", {});
  std::error_code ec;
  if (fs::exists(d / kSourceFile, ec))
    throw MarketplaceError("marketplace '" + name + "' already exists (remove it first, or pick another name)");
  return fetch_and_store(name, location, true);
}

UpdateResult Marketplaces::update(const std::string& name) {
  auto where = location(name);
  StoreLock lock(store_.marketplaces() / ".lock", {});
  return fetch_and_store(name, where, false);
}

UpdateResult Marketplaces::fetch_and_store(const std::string& name, const std::string& location, bool is_new) {
  const std::string what = "marketplace '" + name + "'";
  std::unique_ptr<Source> src;
  try {
    src = Source::open(location);
  } catch (const FetchError& e) {
    throw MarketplaceError(what + ": " + e.what());
  }
  std::vector<std::uint8_t> sig, bytes;
  try {
    sig = src->fetch(std::string(kIndexSignatureFile), FetchOptions::capped(kMaxSignatureBytes));
    bytes = src->fetch(std::string(kIndexFile), FetchOptions::capped(kMaxIndexBytes));
  } catch (const FetchError& e) {
    throw MarketplaceError(what + ": " + e.what());
  }

  VerifiedIndex v;
  try {
    v = verify_index(bytes, as_text(sig), trusted_, what, allow_legacy_);
    check_fresh(v.parsed.index, now(), what);
  } catch (const IndexError& e) {
    throw MarketplaceError(e.what());
  }
  const auto& idx = v.parsed.index;

  // Rollback: never go below the highest version seen from this location, nor below the
  // version already cached under this name.
  store_.create_directories();
  auto state = read_state(store_.marketplaces() / kStateFile);
  Seen seen = seen_for(state, src->location());
  UpdateResult result;
  if (!is_new) {
    try {
      auto cached = load(name);
      result.previous_version = cached.parsed.index.index_version;
      if (cached.parsed.index.index_version > seen.index_version) seen = {cached.parsed.index.index_version, cached.sha256};
    } catch (const std::exception&) {
      // An unusable cache (expired, key removed) does not lower the bar set by the state file.
    }
  }
  if (idx.index_version < seen.index_version)
    throw MarketplaceError(what + ": index refused: its index_version " + std::to_string(idx.index_version) +
                           " is older than version " + std::to_string(seen.index_version) +
                           " already seen from " + src->location() + " (rollback attack or a misconfigured mirror)");
  if (idx.index_version == seen.index_version && !seen.sha256.empty() && seen.sha256 != v.sha256)
    throw MarketplaceError(what + ": index refused: it differs from the index already seen with the same index_version " +
                           std::to_string(idx.index_version) + " (a new index must carry a higher index_version)");

  // Leftovers of an update that was killed (we hold marketplaces/.lock).
  std::error_code sweep_ec;
  for (auto& e : fs::directory_iterator(store_.marketplaces(), sweep_ec)) {
    auto n = e.path().filename().string();
    if (n.starts_with(".tmp-") || n.starts_with(".removing-")) fs::remove_all(e.path(), sweep_ec);
  }

  // Cache: a complete new folder swapped in atomically.
  auto target = dir(name);
  auto staging = store_.marketplaces() / (".tmp-" + name + "-" + random_token());
  try {
    fs::create_directories(staging);
    write_file_durably(staging / kSourceFile, json::serialize(json::object{{"location", src->location()}}) + "\n");
    write_file_durably(staging / std::string(kIndexSignatureFile), as_text(sig));
    write_file_durably(staging / std::string(kIndexFile), as_text(bytes));
    replace_directory(staging, target);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    throw MarketplaceError(what + ": cannot write the cache in " + target.string() + ": " + e.what());
  }

  json::object entry{{"index_version", idx.index_version}, {"sha256", v.sha256}};
  if (!state.contains("seen") || !state["seen"].is_object()) state["seen"] = json::object{};
  state["seen"].as_object()[src->location()] = std::move(entry);
  write_file_durably(store_.marketplaces() / kStateFile, json::serialize(state) + "\n");

  result.warnings = v.parsed.warnings;
  result.info = MarketplaceInfo{name,           src->location(), idx.index_version, idx.expires, v.signer,
                                v.bound_name,   idx.packages.size(), ""};
  return result;
}

void Marketplaces::remove(const std::string& name) {
  auto d = dir(name);
  std::error_code ec;
  if (!fs::exists(d, ec)) throw MarketplaceError("no marketplace named '" + name + "'");
  StoreLock lock(store_.marketplaces() / ".lock", {});
  remove_directory_atomically(d);
  // .state.json keeps the highest version seen: re-adding the same location cannot roll back.
}

VerifiedIndex Marketplaces::load(const std::string& name) const {
  auto d = dir(name);
  const std::string what = "marketplace '" + name + "'";
  std::error_code ec;
  if (!fs::exists(d / kSourceFile, ec)) throw MarketplaceError("no marketplace named '" + name + "'");
  std::vector<std::uint8_t> bytes;
  std::string sig;
  try {
    bytes = read_file_bytes(d / std::string(kIndexFile));
    sig = read_text_file(d / std::string(kIndexSignatureFile));
  } catch (const std::exception& e) {
    throw MarketplaceError(what + " has no cached index; run `keel plugin marketplace update " + name + "`");
  }
  try {
    auto v = verify_index(bytes, sig, trusted_, what, allow_legacy_);
    check_fresh(v.parsed.index, now(), what);
    return v;
  } catch (const IndexError& e) {
    throw MarketplaceError(std::string(e.what()) + "; run `keel plugin marketplace update " + name + "`");
  }
}

MarketplaceInfo Marketplaces::info(const std::string& name) const {
  MarketplaceInfo i;
  i.name = name;
  try {
    i.location = location(name);
    auto v = load(name);
    auto& idx = v.parsed.index;
    i.index_version = idx.index_version;
    i.expires = idx.expires;
    i.signer = v.signer;
    i.bound_name = v.bound_name;
    i.package_count = idx.packages.size();
  } catch (const std::exception& e) {
    i.problem = e.what();
  }
  return i;
}

}  // namespace keel::market
