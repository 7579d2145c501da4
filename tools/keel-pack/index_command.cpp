#include "index_command.hpp"

#include <keel/market/archive.hpp>
#include <keel/market/binding.hpp>
#include <keel/market/index.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

namespace keel::pack {
namespace fs = std::filesystem;
namespace json = boost::json;
using namespace keel::market;

namespace {

std::string text_of(const std::vector<std::uint8_t>& b) { return std::string(b.begin(), b.end()); }

void write_atomically(const fs::path& path, const std::string& text) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "keel-pack-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("cannot create a temporary folder");
    path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// One package of DIR as an index entry (JSON, validated later by the index parser).
json::object describe_package(const fs::path& pkg, const std::string& rel, const std::optional<PublicKey>& own_key) {
  const std::string file = pkg.filename().string();
  auto bytes = read_file_bytes(pkg);
  const std::string sha = sha256_hex(bytes);
  auto sig_path = pkg;
  sig_path += ".minisig";
  if (!fs::exists(sig_path))
    throw std::runtime_error(file + " has no signature " + sig_path.filename().string() +
                             " (keel-pack sign --key SEC " + file + ", or minisign -S)");
  auto sig = Signature::load(sig_path);
  if (own_key && own_key->key_id == sig.key_id) verify(*own_key, bytes, sig);  // our own: check it fully
  Binding b;
  try {
    b = parse_binding(sig.trusted_comment);
  } catch (const std::exception& e) {
    throw std::runtime_error(sig_path.filename().string() + ": trusted comment is not a keel binding: " + e.what());
  }
  if (b.kind != "package" || b.sha256 != sha)
    throw std::runtime_error(sig_path.filename().string() + " does not sign this " + file +
                             " (stale signature? re-sign the package)");

  TempDir tmp;
  extract_archive(bytes, tmp.path() / "x");
  auto manifest_text = text_of(read_file_bytes(tmp.path() / "x" / "module.json"));
  auto manifest = ModuleManifest::parse(manifest_text, file + ":module.json");
  if (b.name != manifest.name || b.version != manifest.version)
    throw std::runtime_error(sig_path.filename().string() + " is for " + b.name + " " + b.version + ", but " + file +
                             " holds " + manifest.name + " " + manifest.version);
  auto raw = json::parse(manifest_text).as_object();

  json::object e;
  e["name"] = manifest.name;
  e["version"] = manifest.version;
  e["kind"] = manifest.kind;
  e["description"] = manifest.description;
  e["publisher"] = sig.key_id_hex();
  e["sha256"] = sha;
  e["size"] = static_cast<std::uint64_t>(bytes.size());
  e["file"] = rel;
  // Kernel ABI: built for MAJOR.MINOR, it runs on that and every later minor of the major.
  if (auto* r = raw.if_contains("kernel_abi"); r && r->is_object()) {
    e["abi"] = *r;
  } else {
    e["abi"] = json::object{{"min", std::to_string(manifest.abi_major) + "." + std::to_string(manifest.abi_minor)},
                            {"max", std::to_string(manifest.abi_major) + ".*"}};
  }
  if (auto* p = raw.if_contains("platform")) {
    e["platform"] = *p;
  } else {
    auto plat = elf_platform(read_file_bytes(tmp.path() / "x" / manifest.library));
    json::object po;
    if (!plat.os.empty()) po["os"] = plat.os;
    if (!plat.arch.empty()) po["arch"] = plat.arch;
    if (!plat.libc.empty()) po["libc"] = plat.libc;
    e["platform"] = std::move(po);
  }
  if (auto* d = raw.if_contains("dependencies")) {
    if (d->is_object()) {  // {"name": "range"} shorthand
      json::array deps;
      for (auto& [k, v] : d->as_object()) deps.push_back(json::object{{"name", json::string_view(k)}, {"range", v}});
      e["dependencies"] = std::move(deps);
    } else {
      e["dependencies"] = *d;
    }
  }
  if (auto* p = raw.if_contains("permissions")) e["permissions"] = *p;
  return e;
}

}  // namespace

std::optional<std::string> index_binding_of(const fs::path& file) {
  if (file.extension() != ".json") return std::nullopt;
  auto bytes = read_file_bytes(file);
  boost::system::error_code ec;
  auto v = json::parse(text_of(bytes), ec);
  if (ec || !v.is_object() || !v.as_object().contains("index_version")) return std::nullopt;
  auto parsed = parse_index(text_of(bytes), file.filename().string());
  return index_binding(parsed.index.name, parsed.index.index_version, sha256_hex(bytes));
}

std::uint64_t build_index(const IndexOptions& o, const SecretKey& key, std::ostream& out, std::ostream& err) {
  if (!fs::is_directory(o.dir)) throw std::runtime_error(o.dir.string() + " is not a folder");
  if (o.expires_days <= 0) throw std::runtime_error("--expires-days must be positive");
  const fs::path index_path = o.dir / std::string(kIndexFile);

  // What the previous index said: its version (the new one must be higher), its name, and
  // which packages were yanked (that stays until --unyank).
  std::uint64_t previous = 0;
  std::string name = o.name;
  std::set<std::string> yanked;
  if (fs::exists(index_path)) {
    try {
      auto prev = parse_index(text_of(read_file_bytes(index_path)), index_path.string());
      previous = prev.index.index_version;
      if (name.empty()) name = prev.index.name;
      for (auto& p : prev.index.packages)
        if (p.yanked) yanked.insert(p.id());
    } catch (const std::exception& e) {
      err << "keel-pack: the previous " << index_path.string() << " is unreadable (" << e.what()
          << "); starting from index_version 1 unless --version says otherwise\n";
    }
  }
  for (auto& y : o.yank) yanked.insert(y);
  for (auto& y : o.unyank) yanked.erase(y);
  const std::uint64_t version = o.version ? *o.version : previous + 1;
  if (version == 0) throw std::runtime_error("--version must be positive");
  if (version <= previous)
    throw std::runtime_error("index_version " + std::to_string(version) + " is not above the previous " +
                             std::to_string(previous) + " (clients refuse an index that goes back)");

  std::vector<fs::path> pkgs;
  for (auto& e : fs::directory_iterator(o.dir))
    if (e.is_regular_file() && e.path().extension() == ".keelpkg") pkgs.push_back(e.path());
  std::sort(pkgs.begin(), pkgs.end());

  const auto own = key.public_key();
  json::array entries;
  for (auto& pkg : pkgs) {
    auto entry = describe_package(pkg, pkg.filename().string(), own);
    std::string id = std::string(entry["name"].as_string()) + "@" + std::string(entry["version"].as_string());
    entry["yanked"] = yanked.count(id) > 0;
    entries.push_back(std::move(entry));
  }
  for (auto& y : o.yank) {
    bool found = std::any_of(entries.begin(), entries.end(), [&](const json::value& v) {
      return std::string(v.at("name").as_string()) + "@" + std::string(v.at("version").as_string()) == y;
    });
    if (!found) throw std::runtime_error("--yank " + y + ": no such package in " + o.dir.string());
  }

  const auto now = std::chrono::system_clock::now();
  json::object doc{{"schema_version", kIndexSchemaVersion}};
  if (!name.empty()) doc["name"] = name;
  doc["index_version"] = version;
  doc["generated"] = format_rfc3339(now);
  doc["expires"] = format_rfc3339(now + std::chrono::hours(24) * o.expires_days);
  doc["packages"] = std::move(entries);

  // Validate with the very parser clients use; anything it would skip is an error here.
  auto parsed = parse_index(json::serialize(doc), index_path.string());
  if (!parsed.warnings.empty()) {
    std::string all;
    for (auto& w : parsed.warnings) all += "\n  " + w;
    throw std::runtime_error("the index would not load cleanly:" + all);
  }
  const std::string text = write_index(parsed.index);
  std::vector<std::uint8_t> bytes(text.begin(), text.end());
  auto sig = sign(key, bytes, index_binding(name, version, sha256_hex(bytes)),
                  "keel marketplace index " + (name.empty() ? std::string("index") : name) + " " + std::to_string(version));
  // The signature first: a reader that sees the new index.json finds its signature too.
  auto sig_path = index_path;
  sig_path += ".minisig";
  write_atomically(o.dir / "index.json.minisig.next", sig.to_file());
  write_atomically(o.dir / "index.json.next", text);
  fs::rename(o.dir / "index.json.minisig.next", sig_path);
  fs::rename(o.dir / "index.json.next", index_path);

  out << index_path.string() << ": index_version " << version << ", " << parsed.index.packages.size()
      << " package(s), expires " << parsed.index.expires << ", signed by " << key.key_id_hex() << "\n";
  for (auto& p : parsed.index.packages)
    out << "  " << p.name << " " << p.version << " (" << p.kind << ", " << p.size << " bytes, publisher " << p.publisher
        << ")" << (p.yanked ? " yanked" : "") << "\n";
  return version;
}

}  // namespace keel::pack
