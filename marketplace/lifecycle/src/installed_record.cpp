#include "installed_record.hpp"

#include <keel/market/atomic_files.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <fstream>

namespace keel::market {
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {
constexpr const char* kRecord = "installed.json";

std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
}  // namespace

void write_installed_record(const fs::path& name_dir, const CatalogEntry& e, const std::string& signer) {
  const auto& p = e.package;
  json::array deps;
  for (auto& d : p.dependencies) deps.push_back(json::object{{"name", d.name}, {"range", d.range}});
  json::array net;
  for (auto& h : p.permissions.network) net.push_back(json::string(h));
  json::object o{{"name", p.name},
                 {"version", p.version},
                 {"marketplace", e.marketplace},
                 {"publisher", p.publisher},
                 {"signer", signer},
                 {"sha256", p.sha256},
                 {"dependencies", std::move(deps)},
                 {"permissions", json::object{{"filesystem", p.permissions.filesystem},
                                              {"network", std::move(net)},
                                              {"processes", p.permissions.processes},
                                              {"declared", p.permissions.declared}}},
                 {"installed_at", format_rfc3339(std::chrono::system_clock::now())}};
  write_file_durably(name_dir / kRecord, json::serialize(o) + "\n", false);  // informative
}

void read_installed_record(const fs::path& name_dir, InstalledPlugin& plugin) {
  std::error_code ec;
  if (!fs::exists(name_dir / kRecord, ec)) return;
  boost::system::error_code jec;
  std::string text;
  try {
    text = read_text_file(name_dir / kRecord);
  } catch (const std::exception&) {
    return;
  }
  auto v = json::parse(text, jec);
  if (jec || !v.is_object()) return;
  auto& o = v.as_object();
  if (str(o, "version") != plugin.version) return;  // a record of another version (pinned back)
  plugin.marketplace = str(o, "marketplace");
  plugin.publisher = str(o, "publisher");
  plugin.sha256 = str(o, "sha256");
  if (auto* d = o.if_contains("dependencies"); d && d->is_array())
    for (auto& x : d->as_array())
      if (x.is_object()) plugin.dependencies.push_back({str(x.as_object(), "name"), str(x.as_object(), "range")});
  if (auto* p = o.if_contains("permissions"); p && p->is_object()) {
    auto& po = p->as_object();
    plugin.permissions.filesystem = str(po, "filesystem");
    if (auto* n = po.if_contains("network"); n && n->is_array())
      for (auto& h : n->as_array())
        if (h.is_string()) plugin.permissions.network.emplace_back(h.as_string());
    if (auto* pr = po.if_contains("processes"); pr && pr->is_bool()) plugin.permissions.processes = pr->as_bool();
    if (auto* dc = po.if_contains("declared"); dc && dc->is_bool()) plugin.permissions.declared = dc->as_bool();
  }
}

std::string read_pin(const fs::path& name_dir) {
  std::ifstream in(name_dir / "pinned");
  std::string v;
  std::getline(in, v);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\r' || v.back() == '\t')) v.pop_back();
  return v;
}

}  // namespace keel::market
