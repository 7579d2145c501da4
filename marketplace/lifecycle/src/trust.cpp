#include <keel/market/atomic_files.hpp>
#include <keel/market/plugins.hpp>

#include <algorithm>
#include <cctype>

namespace keel::market {
namespace fs = std::filesystem;

TrustStore::TrustStore(fs::path dir) : dir_(std::move(dir)) {}

std::vector<TrustedKey> TrustStore::list(std::vector<std::string>* warnings) const {
  std::vector<TrustedKey> out;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return out;
  for (auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() != ".pub") continue;
    try {
      auto key = PublicKey::load(e.path());
      out.push_back({key.key_id_hex(), e.path().stem().string(), e.path()});
    } catch (const std::exception& x) {
      if (warnings) warnings->push_back("trusted key " + e.path().string() + " ignored: " + x.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const TrustedKey& a, const TrustedKey& b) { return a.name < b.name; });
  return out;
}

TrustedKey TrustStore::add(const fs::path& file, std::string name) {
  PublicKey key;
  try {
    key = PublicKey::load(file);
  } catch (const std::exception& e) {
    throw PluginError(file.string() + " is not a minisign public key: " + e.what());
  }
  if (name.empty()) name = key.key_id_hex();
  std::string file_name = name;
  std::transform(file_name.begin(), file_name.end(), file_name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!valid_module_name(file_name))
    throw PluginError("invalid key name '" + name + "' (use [a-z0-9][a-z0-9._-]*, at most 64 characters)");
  for (auto& k : list())
    if (k.id == key.key_id_hex()) return k;  // already trusted
  fs::create_directories(dir_);
  fs::path target = dir_ / (file_name + ".pub");
  std::error_code ec;
  if (fs::exists(target, ec))
    throw PluginError("a different key is already trusted under the name '" + file_name + "'; pick another --name");
  write_file_durably(target, key.to_file());
  return {key.key_id_hex(), file_name, target};
}

TrustedKey TrustStore::remove(std::string_view id_or_name) {
  std::string wanted(id_or_name);
  std::string upper = wanted, lower = wanted;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::optional<TrustedKey> removed;
  for (auto& k : list()) {
    if (k.id == upper || k.name == lower || k.name == wanted) {  // every file holding that key
      fs::remove(k.file);
      if (!removed) removed = k;
    }
  }
  if (removed) {
    fsync_directory(dir_);
    return *removed;
  }
  throw PluginError("no trusted key '" + wanted + "' (see `keel trust list`)");
}

}  // namespace keel::market
