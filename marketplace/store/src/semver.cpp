#include <keel/market/store.hpp>

#include <charconv>
#include <vector>

namespace keel::market {
namespace {

struct Parsed {
  std::uint64_t core[3] = {0, 0, 0};
  std::vector<std::string_view> pre;  // pre-release identifiers
  bool ok = false;
};

Parsed parse(std::string_view v) {
  Parsed p;
  if (auto plus = v.find('+'); plus != std::string_view::npos) v = v.substr(0, plus);  // build metadata
  std::string_view pre;
  if (auto dash = v.find('-'); dash != std::string_view::npos) {
    pre = v.substr(dash + 1);
    v = v.substr(0, dash);
    if (pre.empty()) return p;
  }
  for (int i = 0; i < 3; ++i) {
    auto dot = v.find('.');
    auto part = v.substr(0, dot);
    if (part.empty() || (part.size() > 1 && part[0] == '0')) return p;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), p.core[i]);
    if (ec != std::errc() || ptr != part.data() + part.size()) return p;
    if (i < 2 && dot == std::string_view::npos) return p;
    if (i == 2 && dot != std::string_view::npos) return p;
    v = dot == std::string_view::npos ? std::string_view{} : v.substr(dot + 1);
  }
  while (!pre.empty()) {
    auto dot = pre.find('.');
    auto id = pre.substr(0, dot);
    if (id.empty()) return p;
    p.pre.push_back(id);
    pre = dot == std::string_view::npos ? std::string_view{} : pre.substr(dot + 1);
  }
  p.ok = true;
  return p;
}

bool numeric(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

}  // namespace

bool valid_version(std::string_view v) { return parse(v).ok; }

int compare_versions(std::string_view a, std::string_view b) {
  auto pa = parse(a), pb = parse(b);
  if (!pa.ok || !pb.ok) return a.compare(b);  // unparseable: stable, but arbitrary
  for (int i = 0; i < 3; ++i)
    if (pa.core[i] != pb.core[i]) return pa.core[i] < pb.core[i] ? -1 : 1;
  // A release is newer than any of its pre-releases.
  if (pa.pre.empty() != pb.pre.empty()) return pa.pre.empty() ? 1 : -1;
  for (std::size_t i = 0; i < pa.pre.size() && i < pb.pre.size(); ++i) {
    auto x = pa.pre[i], y = pb.pre[i];
    if (x == y) continue;
    bool nx = numeric(x), ny = numeric(y);
    if (nx && ny) return x.size() != y.size() ? (x.size() < y.size() ? -1 : 1) : x.compare(y);
    if (nx != ny) return nx ? -1 : 1;
    return x.compare(y) < 0 ? -1 : 1;
  }
  return pa.pre.size() == pb.pre.size() ? 0 : (pa.pre.size() < pb.pre.size() ? -1 : 1);
}

}  // namespace keel::market
