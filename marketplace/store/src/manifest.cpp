#include <keel/market/archive.hpp>
#include <keel/market/store.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace keel::market {

bool valid_module_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(name[0])) return false;
  for (char c : name)
    if (!ok_first(c) && c != '-' && c != '_' && c != '.') return false;
  return name.find("..") == std::string_view::npos;
}

ModuleManifest ModuleManifest::parse(std::string_view json_text, const std::string& source) {
  boost::system::error_code ec;
  auto value = boost::json::parse(json_text, ec);
  if (ec) throw StoreError(source + ": not valid JSON: " + ec.message());
  if (!value.is_object()) throw StoreError(source + ": a manifest must be a JSON object");
  auto& o = value.as_object();
  auto text = [&](std::string_view key, bool required) -> std::string {
    auto* v = o.if_contains(key);
    if (!v) {
      if (required) throw StoreError(source + ": missing \"" + std::string(key) + "\"");
      return {};
    }
    if (!v->is_string()) throw StoreError(source + ": \"" + std::string(key) + "\" must be a string");
    return std::string(v->as_string());
  };
  ModuleManifest m;
  m.name = text("name", true);
  m.version = text("version", true);
  m.kind = text("kind", true);
  m.description = text("description", false);
  m.library = text("library", true);
  if (!valid_module_name(m.name)) throw StoreError(source + ": invalid module name '" + m.name + "'");
  if (!valid_version(m.version)) throw StoreError(source + ": invalid version '" + m.version + "' (want semver)");
  if (m.library.empty() || m.library.find('/') != std::string::npos || m.library.starts_with("."))
    throw StoreError(source + ": \"library\" must be a plain file name");
  if (auto* abi = o.if_contains("abi"); abi && abi->is_object()) {
    auto num = [&](std::string_view k, std::uint32_t fallback) {
      auto* v = abi->as_object().if_contains(k);
      return v && v->is_int64() && v->as_int64() >= 0 ? static_cast<std::uint32_t>(v->as_int64()) : fallback;
    };
    m.abi_major = num("major", 1);
    m.abi_minor = num("minor", 0);
  }
  return m;
}

ModuleManifest ModuleManifest::load(const std::filesystem::path& path) {
  std::vector<std::uint8_t> bytes;
  try {
    bytes = read_file_bytes(path);
  } catch (const std::exception& e) {
    throw StoreError(path.string() + ": cannot read: " + e.what());
  }
  return parse(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string());
}

}  // namespace keel::market
