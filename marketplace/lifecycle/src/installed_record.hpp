#pragma once
// modules/<name>/installed.json: where an installed plugin came from (marketplace, publisher,
// sha256, dependencies, permissions), written after each install from a marketplace.
// modules/<name>/pinned: the version discovery loads instead of the highest.
#include <keel/market/plugins.hpp>

namespace keel::market {

void write_installed_record(const std::filesystem::path& name_dir, const CatalogEntry& entry, const std::string& signer);
// Fills marketplace, publisher, sha256, dependencies, permissions when the record exists
// and is for the active version.
void read_installed_record(const std::filesystem::path& name_dir, InstalledPlugin& plugin);
std::string read_pin(const std::filesystem::path& name_dir);

}  // namespace keel::market
