#include <keel/market/index.hpp>
#include <keel/market/store.hpp>
#include <keel/market/version_range.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <set>

namespace keel::market {
namespace json = boost::json;

namespace {

// A malformed package entry: the message says which field and why.
struct EntryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void warn_unknown(const json::object& o, std::initializer_list<std::string_view> known, const std::string& where,
                  std::vector<std::string>& warnings) {
  for (auto& [k, v] : o)
    if (std::find(known.begin(), known.end(), std::string_view(k)) == known.end())
      warnings.push_back(where + ": unknown field \"" + std::string(k) + "\" ignored");
}

std::string str(const json::object& o, std::string_view key, bool required) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) {
    if (required) throw EntryError("missing \"" + std::string(key) + "\"");
    return {};
  }
  if (!v->is_string()) throw EntryError("\"" + std::string(key) + "\" must be a string");
  return std::string(v->as_string());
}

std::optional<std::uint64_t> uint(const json::value& v) {
  if (v.is_uint64()) return v.as_uint64();
  if (v.is_int64() && v.as_int64() >= 0) return static_cast<std::uint64_t>(v.as_int64());
  return std::nullopt;
}

bool is_hex(std::string_view s, std::size_t n, bool upper) {
  return s.size() == n && std::all_of(s.begin(), s.end(), [&](char c) {
           return (c >= '0' && c <= '9') || (upper ? (c >= 'A' && c <= 'F') : (c >= 'a' && c <= 'f'));
         });
}

// A relative path below the index: no absolute paths, no "..", no backslashes or controls.
bool safe_relative(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.size() > 1024) return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    auto slash = p.find('/', start);
    auto part = p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return std::none_of(p.begin(), p.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f || c == '\\' || c == '?' || c == '#' || c == '%';
  });
}

IndexPackage parse_package(const json::value& value, const std::string& where, std::vector<std::string>& warnings) {
  if (!value.is_object()) throw EntryError("a package entry must be an object");
  auto& o = value.as_object();
  warn_unknown(o,
               {"name", "version", "kind", "description", "publisher", "sha256", "size", "file", "url", "abi",
                "platform", "dependencies", "permissions", "yanked"},
               where, warnings);
  IndexPackage p;
  p.name = str(o, "name", true);
  if (!valid_module_name(p.name)) throw EntryError("invalid name '" + p.name + "'");
  p.version = str(o, "version", true);
  if (!valid_version(p.version)) throw EntryError("invalid version '" + p.version + "' (want semver)");
  p.kind = str(o, "kind", true);
  if (p.kind.empty()) throw EntryError("\"kind\" is empty");
  p.description = str(o, "description", false);
  p.publisher = str(o, "publisher", true);
  for (char& c : p.publisher) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!is_hex(p.publisher, 16, true)) throw EntryError("\"publisher\" must be a minisign key id (16 hex digits)");
  p.sha256 = str(o, "sha256", true);
  for (char& c : p.sha256) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!is_hex(p.sha256, 64, false)) throw EntryError("\"sha256\" must be 64 hex digits");
  auto* size = o.if_contains("size");
  if (!size) throw EntryError("missing \"size\"");
  auto n = uint(*size);
  if (!n || *n == 0) throw EntryError("\"size\" must be a positive integer (bytes)");
  p.size = *n;
  p.file = str(o, "file", false);
  p.url = str(o, "url", false);
  if (p.file.empty() == p.url.empty()) throw EntryError("exactly one of \"file\" and \"url\" is needed");
  if (!p.file.empty() && !safe_relative(p.file))
    throw EntryError("\"file\" must be a plain relative path below the index, not '" + p.file + "'");
  if (!p.url.empty() && !p.url.starts_with("https://") && !p.url.starts_with("http://"))
    throw EntryError("\"url\" must be an http:// or https:// URL");

  if (auto* abi = o.if_contains("abi"); abi && !abi->is_null()) {
    if (!abi->is_object()) throw EntryError("\"abi\" must be an object {\"min\", \"max\"}");
    warn_unknown(abi->as_object(), {"min", "max"}, where + ".abi", warnings);
    p.abi.min = str(abi->as_object(), "min", false);
    p.abi.max = str(abi->as_object(), "max", false);
    if (!valid_abi_range(p.abi)) throw EntryError("\"abi\" wants \"MAJOR.MINOR\" bounds (max may be \"MAJOR.*\")");
  }
  if (auto* plat = o.if_contains("platform"); plat && !plat->is_null()) {
    if (!plat->is_object()) throw EntryError("\"platform\" must be an object {\"os\", \"arch\", \"libc\"}");
    auto& po = plat->as_object();
    warn_unknown(po, {"os", "arch", "libc"}, where + ".platform", warnings);
    p.platform = {str(po, "os", false), str(po, "arch", false), str(po, "libc", false)};
  }
  if (auto* deps = o.if_contains("dependencies"); deps && !deps->is_null()) {
    if (!deps->is_array()) throw EntryError("\"dependencies\" must be an array");
    std::size_t i = 0;
    for (auto& d : deps->as_array()) {
      auto here = where + ".dependencies[" + std::to_string(i++) + "]";
      if (!d.is_object()) throw EntryError(here + " must be an object {\"name\", \"range\"}");
      warn_unknown(d.as_object(), {"name", "range"}, here, warnings);
      Dependency dep{str(d.as_object(), "name", true), str(d.as_object(), "range", false)};
      if (dep.range.empty()) dep.range = "*";
      if (!valid_module_name(dep.name)) throw EntryError(here + ": invalid name '" + dep.name + "'");
      if (dep.name == p.name) throw EntryError(here + ": a package cannot depend on itself");
      if (!valid_version_range(dep.range)) throw EntryError(here + ": invalid version range '" + dep.range + "'");
      p.dependencies.push_back(std::move(dep));
    }
  }
  if (auto* perm = o.if_contains("permissions"); perm && !perm->is_null()) {
    if (!perm->is_object()) throw EntryError("\"permissions\" must be an object");
    auto& po = perm->as_object();
    warn_unknown(po, {"filesystem", "network", "processes"}, where + ".permissions", warnings);
    p.permissions.declared = true;
    auto fs = str(po, "filesystem", false);
    if (!fs.empty()) {
      if (fs != "none" && fs != "read" && fs != "write")
        throw EntryError("permissions.filesystem must be \"none\", \"read\" or \"write\"");
      p.permissions.filesystem = fs;
    }
    if (auto* net = po.if_contains("network"); net && !net->is_null()) {
      if (net->is_bool()) {
        if (net->as_bool()) p.permissions.network = {"*"};
      } else if (net->is_array()) {
        for (auto& h : net->as_array()) {
          if (!h.is_string() || h.as_string().empty())
            throw EntryError("permissions.network must be a boolean or a list of host names");
          p.permissions.network.emplace_back(h.as_string());
        }
      } else {
        throw EntryError("permissions.network must be a boolean or a list of host names");
      }
    }
    if (auto* pr = po.if_contains("processes"); pr && !pr->is_null()) {
      if (!pr->is_bool()) throw EntryError("permissions.processes must be a boolean");
      p.permissions.processes = pr->as_bool();
    }
  }
  if (auto* y = o.if_contains("yanked"); y && !y->is_null()) {
    if (!y->is_bool()) throw EntryError("\"yanked\" must be a boolean");
    p.yanked = y->as_bool();
  }
  return p;
}

}  // namespace

ParsedIndex parse_index(std::string_view text, const std::string& source) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec) throw IndexError(source + ": not valid JSON: " + ec.message());
  if (!doc.is_object()) throw IndexError(source + ": an index must be a JSON object");
  auto& o = doc.as_object();
  ParsedIndex out;
  auto& idx = out.index;

  auto* schema = o.if_contains("schema_version");
  if (!schema) throw IndexError(source + ": missing \"schema_version\" (is this a keel marketplace index?)");
  auto sv = uint(*schema);
  if (!sv || *sv == 0) throw IndexError(source + ": \"schema_version\" must be a positive integer");
  if (*sv > static_cast<std::uint64_t>(kIndexSchemaVersion))
    throw IndexError(source + ": index schema " + std::to_string(*sv) + " is newer than this keel understands (" +
                     std::to_string(kIndexSchemaVersion) + "); upgrade keel");
  idx.schema_version = static_cast<int>(*sv);

  auto* iv = o.if_contains("index_version");
  auto ivn = iv ? uint(*iv) : std::nullopt;
  if (!ivn || *ivn == 0) throw IndexError(source + ": \"index_version\" must be a positive integer");
  idx.index_version = *ivn;

  auto* exp = o.if_contains("expires");
  if (!exp || !exp->is_string()) throw IndexError(source + ": missing \"expires\" (an RFC 3339 time)");
  idx.expires = std::string(exp->as_string());
  auto t = parse_rfc3339(idx.expires);
  if (!t) throw IndexError(source + ": \"expires\" is not an RFC 3339 time: '" + idx.expires + "'");
  idx.expires_at = *t;

  if (auto* n = o.if_contains("name"); n && !n->is_null()) {
    if (!n->is_string() || !valid_module_name(n->as_string()))
      throw IndexError(source + ": \"name\" must be a marketplace name ([a-z0-9][a-z0-9._-]*)");
    idx.name = std::string(n->as_string());
  }
  if (auto* g = o.if_contains("generated"); g && g->is_string()) idx.generated = std::string(g->as_string());

  auto* pkgs = o.if_contains("packages");
  if (!pkgs || !pkgs->is_array()) throw IndexError(source + ": missing \"packages\" (an array)");
  warn_unknown(o, {"schema_version", "name", "index_version", "generated", "expires", "packages"}, source, out.warnings);

  std::set<std::string> seen;
  std::size_t i = 0;
  for (auto& entry : pkgs->as_array()) {
    std::string where = source + ": packages[" + std::to_string(i++) + "]";
    if (entry.is_object())
      if (auto* n = entry.as_object().if_contains("name"); n && n->is_string()) {
        where += " (" + std::string(n->as_string());
        if (auto* v = entry.as_object().if_contains("version"); v && v->is_string())
          where += "@" + std::string(v->as_string());
        where += ")";
      }
    try {
      std::vector<std::string> entry_warnings;
      auto p = parse_package(entry, where, entry_warnings);
      if (!seen.insert(p.id()).second) throw EntryError("listed twice");
      out.warnings.insert(out.warnings.end(), entry_warnings.begin(), entry_warnings.end());
      idx.packages.push_back(std::move(p));
    } catch (const EntryError& e) {
      out.warnings.push_back(where + ": skipped: " + e.what());
    }
  }
  return out;
}

std::vector<const IndexPackage*> Index::versions_of(std::string_view name) const {
  std::vector<const IndexPackage*> out;
  for (auto& p : packages)
    if (p.name == name) out.push_back(&p);
  std::sort(out.begin(), out.end(),
            [](const IndexPackage* a, const IndexPackage* b) { return compare_versions(a->version, b->version) > 0; });
  return out;
}

const IndexPackage* Index::find(std::string_view name, std::string_view version) const {
  for (auto& p : packages)
    if (p.name == name && p.version == version) return &p;
  return nullptr;
}

}  // namespace keel::market
