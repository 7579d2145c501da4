// keel-pack index: turn a folder of signed packages into a signed marketplace index.
#pragma once

#include <keel/market/minisign.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace keel::pack {

struct IndexOptions {
  std::filesystem::path dir;
  std::optional<std::uint64_t> version;  // default: previous index_version + 1 (or 1)
  int expires_days = 30;
  std::string name;                      // marketplace name bound in the signature
  std::vector<std::string> yank, unyank; // NAME@VERSION
};

// Scans DIR/*.keelpkg (each with its .minisig and module.json inside), writes DIR/index.json
// and signs it (DIR/index.json.minisig). Returns the index_version written.
std::uint64_t build_index(const IndexOptions& options, const market::SecretKey& key, std::ostream& out,
                          std::ostream& err);

// When `file` is a marketplace index, the binding its signature must carry.
std::optional<std::string> index_binding_of(const std::filesystem::path& file);

}  // namespace keel::pack
