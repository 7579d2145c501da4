#include <keel/market/archive.hpp>
#include <keel/market/store.hpp>

#include <algorithm>
#include <fstream>

namespace keel::market {
namespace fs = std::filesystem;

static std::string read_pin(const fs::path& file) {
  std::ifstream in(file);
  std::string v;
  std::getline(in, v);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\r' || v.back() == '\t')) v.pop_back();
  return v;
}

std::vector<InstalledModule> discover_modules(const fs::path& modules_dir, std::vector<DiscoveryProblem>& problems) {
  std::vector<InstalledModule> found;
  std::error_code ec;
  if (!fs::is_directory(modules_dir, ec)) return found;
  std::vector<fs::path> names;
  for (auto& e : fs::directory_iterator(modules_dir, ec))
    if (e.is_directory() && !e.path().filename().string().starts_with(".")) names.push_back(e.path());
  std::sort(names.begin(), names.end());

  for (auto& name_dir : names) {
    std::string name = name_dir.filename().string();
    std::vector<fs::path> versions;
    for (auto& e : fs::directory_iterator(name_dir, ec))
      if (e.is_directory() && !e.path().filename().string().starts_with(".")) versions.push_back(e.path());
    if (versions.empty()) continue;
    std::string pin = fs::exists(name_dir / "pinned") ? read_pin(name_dir / "pinned") : "";
    std::sort(versions.begin(), versions.end(), [](const fs::path& a, const fs::path& b) {
      return compare_versions(a.filename().string(), b.filename().string()) > 0;
    });
    fs::path chosen;
    if (!pin.empty()) {
      if (fs::is_directory(name_dir / pin)) chosen = name_dir / pin;
      else problems.push_back({name_dir, name, "pinned version " + pin + " is not installed"});
    }
    if (chosen.empty()) chosen = versions.front();
    try {
      InstalledModule m{ModuleManifest::load(chosen / "module.json"), chosen};
      if (m.manifest.name != name || m.manifest.version != chosen.filename().string())
        throw StoreError("manifest says " + m.manifest.name + "@" + m.manifest.version + " but it is installed as " +
                         name + "/" + chosen.filename().string());
      found.push_back(std::move(m));
    } catch (const std::exception& e) {
      problems.push_back({chosen, name, e.what()});
    }
  }
  return found;
}

}  // namespace keel::market
