// Where tests that exercise sandboxes make their scratch trees: a directory *outside* the temp
// dirs, because /tmp and $TMPDIR are writable roots in workspace-write, and a "forbidden"
// folder inside one would be writable after all. The build tree, unless it is itself in a
// temp dir (a checkout under /tmp); then /var/tmp or $HOME.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::test {

inline std::filesystem::path scratch_parent() {
  namespace fs = std::filesystem;
  auto inside = [](const fs::path& p, const fs::path& root) {
    auto rel = p.lexically_relative(root);
    return !rel.empty() && *rel.begin() != "..";
  };
  std::vector<fs::path> temps{"/tmp"};
  if (const char* t = std::getenv("TMPDIR"); t && *t) temps.emplace_back(t);
  for (auto& t : temps) {
    std::error_code ec;
    if (auto c = fs::canonical(t, ec); !ec) t = c;
  }
  std::vector<fs::path> candidates{fs::path(KEEL_BINARY_DIR), "/var/tmp"};
  if (const char* h = std::getenv("HOME"); h && *h) candidates.emplace_back(h);
  for (const auto& c : candidates) {
    std::error_code ec;
    auto canon = fs::canonical(c, ec);
    if (ec) continue;
    bool in_temp = false;
    for (auto& t : temps) in_temp = in_temp || canon == t || inside(canon, t);
    if (!in_temp) return canon;
  }
  throw std::runtime_error("no directory outside the temp dirs for a scratch tree");
}

}  // namespace keel::test
