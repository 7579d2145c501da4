#pragma once
#include <keel/market/store.hpp>

namespace keel::market {
// Throws StoreError unless the verified trusted comment binds exactly this kind, name,
// version and content hash.
void check_binding(const std::string& comment, std::string_view kind, const ModuleManifest& m, std::string_view sha256);
}
