#include <keel/market/store.hpp>
#include <keel/market/version_range.hpp>

#include <charconv>
#include <optional>
#include <string>
#include <vector>

namespace keel::market {
namespace {

enum class Op { eq, lt, le, gt, ge };

struct Comparator {
  Op op;
  std::string version;
  bool named_pre = false;  // the range itself names this pre-release (not a bound we made up)
};

using Set = std::vector<Comparator>;  // all must hold

// "1", "1.2", "1.2.3", "1.2.3-pre", with "x", "X" or "*" for any trailing part.
struct Partial {
  int parts = 0;                 // how many of major.minor.patch are numbers
  std::uint64_t n[3] = {0, 0, 0};
  std::string pre;               // only with 3 parts
};

std::optional<Partial> parse_partial(std::string_view s) {
  Partial p;
  if (s.empty() || s == "*" || s == "x" || s == "X") return p;
  if (s.front() == 'v') s.remove_prefix(1);
  std::string_view rest = s;
  std::string_view pre;
  if (auto plus = rest.find('+'); plus != std::string_view::npos) rest = rest.substr(0, plus);
  if (auto dash = rest.find('-'); dash != std::string_view::npos) {
    pre = rest.substr(dash + 1);
    rest = rest.substr(0, dash);
  }
  bool wildcard = false;
  for (int i = 0; i < 3 && !rest.empty(); ++i) {
    auto dot = rest.find('.');
    auto part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (dot != std::string_view::npos && rest.empty()) return std::nullopt;  // "1."
    if (part == "x" || part == "X" || part == "*") {
      wildcard = true;
      continue;
    }
    if (wildcard || part.empty() || (part.size() > 1 && part[0] == '0')) return std::nullopt;
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), p.n[i]);
    if (ec != std::errc() || ptr != part.data() + part.size()) return std::nullopt;
    p.parts = i + 1;
  }
  if (!rest.empty()) return std::nullopt;
  if (!pre.empty()) {
    if (p.parts != 3) return std::nullopt;
    p.pre = std::string(pre);
    if (!valid_version("0.0.0-" + p.pre)) return std::nullopt;
  }
  return p;
}

std::string ver(std::uint64_t a, std::uint64_t b, std::uint64_t c, const std::string& pre = {}) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c) + (pre.empty() ? "" : "-" + pre);
}

// The lowest version above every release of the partial: "1.2" -> "1.3.0-0".
std::string next_up(const Partial& p) {
  if (p.parts <= 1) return ver(p.n[0] + 1, 0, 0, "0");
  if (p.parts == 2) return ver(p.n[0], p.n[1] + 1, 0, "0");
  return ver(p.n[0], p.n[1], p.n[2] + 1, "0");
}

// Adds the comparators one token stands for (operator already split off into op_text).
void expand(std::string_view op_text, const Partial* p, Set& set) {
  const std::string low = ver(p->n[0], p->n[1], p->n[2], p->pre);
  if (op_text.empty() || op_text == "=") {
    if (p->parts == 3) {
      set.push_back({Op::eq, low});
    } else if (p->parts > 0) {
      set.push_back({Op::ge, low});
      set.push_back({Op::lt, next_up(*p)});
    } else {
      set.push_back({Op::ge, "0.0.0"});
    }
  } else if (op_text == "^") {
    if (p->parts == 0) return set.push_back({Op::ge, "0.0.0"});
    set.push_back({Op::ge, low});
    Partial up = *p;
    if (p->n[0] > 0 || p->parts == 1) up.parts = 1;
    else if (p->n[1] > 0 || p->parts == 2) up.parts = 2;
    else up.parts = 3;
    set.push_back({Op::lt, next_up(up)});
  } else if (op_text == "~") {
    if (p->parts == 0) return set.push_back({Op::ge, "0.0.0"});
    set.push_back({Op::ge, low});
    Partial up = *p;
    up.parts = p->parts == 1 ? 1 : 2;
    set.push_back({Op::lt, next_up(up)});
  } else if (op_text == ">=") {
    set.push_back({Op::ge, low});
  } else if (op_text == ">") {
    if (p->parts == 3) set.push_back({Op::gt, low});
    else if (p->parts == 0) set.push_back({Op::lt, "0.0.0-0"});  // nothing is above "*"
    else set.push_back({Op::ge, next_up(*p)});
  } else if (op_text == "<") {
    set.push_back({Op::lt, p->parts == 3 ? low : ver(p->n[0], p->n[1], p->n[2], "0")});
  } else if (op_text == "<=") {
    if (p->parts == 3) set.push_back({Op::le, low});
    else if (p->parts > 0) set.push_back({Op::lt, next_up(*p)});
  }
}

bool add_comparator(std::string_view token, Set& set) {
  std::string_view op_text;
  for (std::string_view candidate : {">=", "<=", ">", "<", "=", "^", "~"})
    if (token.starts_with(candidate)) {
      op_text = candidate;
      break;
    }
  if (!op_text.empty() && op_text.size() == token.size()) return false;  // ">=" with no version
  auto p = parse_partial(token.substr(op_text.size()));
  if (!p) return false;
  const std::size_t first = set.size();
  expand(op_text, &*p, set);
  if (!p->pre.empty()) {
    const std::string low = ver(p->n[0], p->n[1], p->n[2], p->pre);
    for (std::size_t i = first; i < set.size(); ++i)
      if (set[i].version == low) set[i].named_pre = true;
  }
  return true;
}

std::optional<std::vector<Set>> parse_range(std::string_view range) {
  std::vector<Set> sets;
  while (true) {
    auto bar = range.find("||");
    auto alt = range.substr(0, bar);
    Set set;
    std::size_t i = 0;
    std::vector<std::string> tokens;
    while (i < alt.size()) {
      while (i < alt.size() && alt[i] == ' ') ++i;
      std::size_t j = i;
      while (j < alt.size() && alt[j] != ' ') ++j;
      if (j > i) tokens.emplace_back(alt.substr(i, j - i));
      i = j;
    }
    // Allow ">= 1.2.3" (operator and version separated by a space).
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      auto& t = tokens[k];
      if ((t == ">=" || t == "<=" || t == ">" || t == "<" || t == "=" || t == "^" || t == "~") && k + 1 < tokens.size()) {
        t += tokens[k + 1];
        tokens.erase(tokens.begin() + static_cast<long>(k) + 1);
      }
      if (!add_comparator(t, set)) return std::nullopt;
    }
    if (tokens.empty()) {
      if (bar != std::string_view::npos || !sets.empty()) return std::nullopt;  // "a || " is malformed
      set.push_back({Op::ge, "0.0.0"});
    }
    sets.push_back(std::move(set));
    if (bar == std::string_view::npos) break;
    range = range.substr(bar + 2);
  }
  return sets;
}

bool holds(const Comparator& c, std::string_view v) {
  int r = compare_versions(v, c.version);
  switch (c.op) {
    case Op::eq: return r == 0;
    case Op::lt: return r < 0;
    case Op::le: return r <= 0;
    case Op::gt: return r > 0;
    case Op::ge: return r >= 0;
  }
  return false;
}

std::string core_of(std::string_view v) {
  auto cut = v.find_first_of("-+");
  return std::string(v.substr(0, cut));
}

}  // namespace

bool valid_version_range(std::string_view range) { return parse_range(range).has_value(); }

bool satisfies(std::string_view version, std::string_view range) {
  if (!valid_version(version)) return false;
  auto sets = parse_range(range);
  if (!sets) return false;
  const bool is_pre = core_of(version).size() < std::string(version.substr(0, version.find('+'))).size();
  for (auto& set : *sets) {
    bool ok = true;
    for (auto& c : set) ok = ok && holds(c, version);
    if (!ok) continue;
    if (!is_pre) return true;
    // A pre-release needs a comparator naming a pre-release of the same core version
    // (bounds we made up, like "2.0.0-0", do not count).
    for (auto& c : set)
      if (c.named_pre && core_of(c.version) == core_of(version))
        return true;
  }
  return false;
}

}  // namespace keel::market
