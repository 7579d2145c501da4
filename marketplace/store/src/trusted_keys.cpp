#include <keel/market/store.hpp>

#include <algorithm>

namespace keel::market {

std::vector<PublicKey> load_trusted_keys(const std::filesystem::path& dir, std::vector<std::string>& warnings) {
  std::vector<PublicKey> keys;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return keys;
  std::vector<std::filesystem::path> files;
  for (auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".pub") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    try {
      keys.push_back(PublicKey::load(f));
    } catch (const std::exception& e) {
      warnings.push_back("trusted key " + f.string() + " ignored: " + e.what());
    }
  }
  return keys;
}

}  // namespace keel::market
