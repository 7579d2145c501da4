#include <keel/market/binding.hpp>
#include <keel/market/index.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace keel::market {
namespace json = boost::json;

namespace {

// Objects and non-empty arrays one member per line; scalars and empty containers inline.
void pretty(const json::value& v, std::string& out, int indent) {
  auto pad = [&](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
  if (v.is_object() && !v.as_object().empty()) {
    out += "{\n";
    bool first = true;
    for (auto& [k, x] : v.as_object()) {
      if (!first) out += ",\n";
      first = false;
      pad(indent + 1);
      out += json::serialize(json::value(json::string_view(k)));
      out += ": ";
      pretty(x, out, indent + 1);
    }
    out += "\n";
    pad(indent);
    out += "}";
  } else if (v.is_array() && !v.as_array().empty()) {
    // Arrays of scalars stay on one line (["api.example.com"]).
    bool scalars = true;
    for (auto& x : v.as_array()) scalars = scalars && !x.is_object() && !x.is_array();
    if (scalars) {
      out += json::serialize(v);
      return;
    }
    out += "[\n";
    bool first = true;
    for (auto& x : v.as_array()) {
      if (!first) out += ",\n";
      first = false;
      pad(indent + 1);
      pretty(x, out, indent + 1);
    }
    out += "\n";
    pad(indent);
    out += "]";
  } else {
    out += json::serialize(v);
  }
}

json::object package_json(const IndexPackage& p) {
  json::object o;
  o["name"] = p.name;
  o["version"] = p.version;
  o["kind"] = p.kind;
  o["description"] = p.description;
  o["publisher"] = p.publisher;
  o["sha256"] = p.sha256;
  o["size"] = p.size;
  if (!p.url.empty()) o["url"] = p.url;
  else o["file"] = p.file;
  if (!p.abi.empty()) {
    json::object abi;
    if (!p.abi.min.empty()) abi["min"] = p.abi.min;
    if (!p.abi.max.empty()) abi["max"] = p.abi.max;
    o["abi"] = std::move(abi);
  }
  if (!p.platform.empty()) {
    json::object plat;
    if (!p.platform.os.empty()) plat["os"] = p.platform.os;
    if (!p.platform.arch.empty()) plat["arch"] = p.platform.arch;
    if (!p.platform.libc.empty()) plat["libc"] = p.platform.libc;
    o["platform"] = std::move(plat);
  }
  json::array deps;
  for (auto& d : p.dependencies) deps.push_back(json::object{{"name", d.name}, {"range", d.range}});
  o["dependencies"] = std::move(deps);
  json::array net;
  for (auto& h : p.permissions.network) net.push_back(json::string(h));
  o["permissions"] = json::object{{"filesystem", p.permissions.filesystem},
                                  {"network", std::move(net)},
                                  {"processes", p.permissions.processes}};
  o["yanked"] = p.yanked;
  return o;
}

}  // namespace

std::string write_index(const Index& index) {
  json::object o;
  o["schema_version"] = index.schema_version;
  if (!index.name.empty()) o["name"] = index.name;
  o["index_version"] = index.index_version;
  if (!index.generated.empty()) o["generated"] = index.generated;
  o["expires"] = index.expires;
  json::array packages;
  for (auto& p : index.packages) packages.push_back(package_json(p));
  o["packages"] = std::move(packages);
  std::string out;
  pretty(o, out, 0);
  out += "\n";
  return out;
}

std::string write_package(const IndexPackage& package) {
  std::string out;
  pretty(package_json(package), out, 0);
  return out;
}

std::string index_binding(std::string_view name, std::uint64_t index_version, std::string_view sha256) {
  return format_binding("index", name.empty() ? std::string_view("index") : name, std::to_string(index_version), sha256);
}

}  // namespace keel::market
