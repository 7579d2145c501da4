// Attacks on the marketplace path. Each must be refused with a clear message, install
// nothing, and lose nothing: the installed version keeps loading, the cached index stays.
#include "fixture.hpp"

#include <archive.h>
#include <archive_entry.h>

using namespace keel::test;

namespace {

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// A user with echo-tool 1.0.0 installed from marketplace "test" (index_version 1), and the
// publisher's folder now holding 2.0.0 too (not yet published).
struct Attacked {
  TempDir tmp{"keel-market"};
  Publisher pub{tmp / "market"};
  Home home{tmp / "home"};
  KeyPair attacker = generate_keypair();

  Attacked() {
    home.trust(pub.key().public_key, "publisher");
    pub.add(PackageSpec("echo-tool", "1.0.0"));
    pub.publish(1);
    Plugins p(home.options());
    p.marketplaces().add("test", pub.dir().string());
    p.install_from_marketplace("echo-tool");
    pub.add(PackageSpec("echo-tool", "2.0.0"));
  }

  Plugins plugins() const { return Plugins(home.options()); }
  std::uint64_t cached_version() const { return Plugins(home.options()).marketplaces().load("test").parsed.index.index_version; }

  // Nothing installed, nothing lost, nothing left over.
  void require_intact(std::uint64_t cached = 1) const {
    home.require_loadable("echo-tool", "1.0.0");
    CHECK(home.versions_on_disk("echo-tool") == std::vector<std::string>{"1.0.0"});
    CHECK(cached_version() == cached);
    for (auto& e : fs::directory_iterator(home.layout().packages()))
      CHECK_FALSE(e.path().filename().string().starts_with(".partial-"));
    for (auto& e : fs::directory_iterator(home.layout().modules())) {
      auto n = e.path().filename().string();
      CHECK_FALSE((n.starts_with(".install-") || n.starts_with(".tmp-")));
    }
  }
};

void write_tar_gz(const fs::path& out, const std::vector<std::pair<std::string, std::string>>& members) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (auto& [name, data] : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace

TEST_CASE("a tampered index is refused before it is parsed", "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2);
  auto text = read_text(w.pub.dir() / "index.json");
  auto at = text.find("test package echo-tool");
  REQUIRE(at != std::string::npos);
  text.replace(at, 4, "TEST");
  write_text(w.pub.dir() / "index.json", text);
  auto p = w.plugins();
  auto err = error_of([&] { p.marketplaces().update("test"); });
  INFO(err);
  CHECK(contains(err, "marketplace 'test': index refused"));
  CHECK(contains(err, "signature"));
  // The cached index (version 1) does not know 2.0.0.
  CHECK(contains(error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); }), "has no version 2.0.0"));
  w.require_intact();

  // Not JSON at all, but "signed" by nobody trusted: still refused on the signature.
  write_text(w.pub.dir() / "index.json", "{{{{ not json");
  CHECK(contains(error_of([&] { p.marketplaces().update("test"); }), "index refused"));
  w.require_intact();
}

TEST_CASE("an index signed by an untrusted key is refused", "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2, days(30), &w.attacker.secret_key);
  auto p = w.plugins();
  auto err = error_of([&] { p.marketplaces().update("test"); });
  INFO(err);
  CHECK(contains(err, "index refused"));
  CHECK(contains(err, w.attacker.public_key.key_id_hex()));
  CHECK(contains(err, "not trusted"));
  // Nor can it be added under a new name.
  CHECK(contains(error_of([&] { p.marketplaces().add("evil", w.pub.dir().string()); }), "not trusted"));
  CHECK(p.marketplaces().names() == std::vector<std::string>{"test"});
  w.require_intact();
}

TEST_CASE("an index whose signature is not an index binding, or binds another version, is refused",
          "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2);
  auto bytes = read_text(w.pub.dir() / "index.json");
  auto sha = sha256_hex(as_bytes(bytes));
  auto p = w.plugins();

  // A package signature replayed onto the index.
  write_text(w.pub.dir() / "index.json.minisig",
             sign(w.pub.key().secret_key, as_bytes(bytes), format_binding("package", "test", "2", sha)).to_file());
  CHECK(contains(error_of([&] { p.marketplaces().update("test"); }), "not an index"));
  // Signed as version 7 while the JSON says 2.
  write_text(w.pub.dir() / "index.json.minisig",
             sign(w.pub.key().secret_key, as_bytes(bytes), index_binding("test", 7, sha)).to_file());
  CHECK(contains(error_of([&] { p.marketplaces().update("test"); }), "says index_version 2 but its signature is for version 7"));
  // Signed for another marketplace name.
  write_text(w.pub.dir() / "index.json.minisig",
             sign(w.pub.key().secret_key, as_bytes(bytes), index_binding("other", 2, sha)).to_file());
  CHECK(contains(error_of([&] { p.marketplaces().update("test"); }), "named 'test' but its signature is for 'other'"));
  w.require_intact();
}

TEST_CASE("an expired index is refused, fetched or cached", "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2, days(-1));
  auto p = w.plugins();
  auto err = error_of([&] { p.marketplaces().update("test"); });
  INFO(err);
  CHECK(contains(err, "expired at"));
  w.require_intact();

  // The cached index expires too (a frozen mirror): nothing installs from it.
  auto o = w.home.options();
  o.now = days(60);
  Plugins later(o);
  auto cached = error_of([&] { later.install_from_marketplace("echo-tool"); });
  CHECK(contains(cached, "no marketplace lists"));
  REQUIRE(!w.home.warnings.empty());
  CHECK(contains(w.home.warnings.back(), "expired"));
  CHECK(contains(w.home.warnings.back(), "keel plugin marketplace update test"));
  w.require_intact();
}

TEST_CASE("a rolled-back index is refused, even after remove and re-add", "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2);
  auto old_index = read_text(w.pub.dir() / "index.json");
  auto old_sig = read_text(w.pub.dir() / "index.json.minisig");
  w.pub.publish(3);
  auto p = w.plugins();
  CHECK(p.marketplaces().update("test").info.index_version == 3);

  write_text(w.pub.dir() / "index.json", old_index);
  write_text(w.pub.dir() / "index.json.minisig", old_sig);
  auto err = error_of([&] { p.marketplaces().update("test"); });
  INFO(err);
  CHECK(contains(err, "index_version 2 is older than version 3 already seen"));
  CHECK(w.cached_version() == 3);

  p.marketplaces().remove("test");
  CHECK(contains(error_of([&] { p.marketplaces().add("test", w.pub.dir().string()); }), "older than version 3"));
  CHECK(p.marketplaces().names().empty());

  // A different index reusing version 3 is refused too.
  w.pub.add(PackageSpec("extra", "1.0.0"));
  w.pub.publish(3);
  CHECK(contains(error_of([&] { p.marketplaces().add("test", w.pub.dir().string()); }),
                 "differs from the index already seen with the same index_version 3"));
  w.pub.publish(4);
  CHECK(p.marketplaces().add("test", w.pub.dir().string()).info.index_version == 4);
  w.require_intact(4);
}

TEST_CASE("a package swapped for another signed package is refused (mix-and-match)", "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2);
  auto p = w.plugins();
  p.marketplaces().update("test");
  auto dir = w.pub.dir();
  auto v2 = read_text(dir / "echo-tool-2.0.0.keelpkg");
  auto v2sig = read_text(dir / "echo-tool-2.0.0.keelpkg.minisig");

  SECTION("the file at 2.0.0's place is the signed 1.0.0 package") {
    fs::copy_file(dir / "echo-tool-1.0.0.keelpkg", dir / "echo-tool-2.0.0.keelpkg", fs::copy_options::overwrite_existing);
    fs::copy_file(dir / "echo-tool-1.0.0.keelpkg.minisig", dir / "echo-tool-2.0.0.keelpkg.minisig",
                  fs::copy_options::overwrite_existing);
    // Same size so that the size cap is not what catches it.
    w.pub.find("echo-tool", "2.0.0")->size = fs::file_size(dir / "echo-tool-2.0.0.keelpkg");
    w.pub.publish(3);
    p.marketplaces().update("test");
    auto err = error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); });
    INFO(err);
    CHECK(contains(err, "is not the one the index lists"));
    CHECK(contains(err, "nothing was installed"));
  }
  SECTION("the right bytes, but signed as another version") {
    auto sig = sign(w.pub.key().secret_key, as_bytes(v2),
                    format_binding("package", "echo-tool", "9.9.9", sha256_hex(as_bytes(v2))));
    write_text(dir / "echo-tool-2.0.0.keelpkg.minisig", sig.to_file());
    auto err = error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); });
    INFO(err);
    CHECK(contains(err, "signature is for package echo-tool 9.9.9"));
    CHECK(contains(err, "mix-and-match"));
  }
  SECTION("the right bytes, signature of another package") {
    write_text(dir / "echo-tool-2.0.0.keelpkg.minisig", read_text(dir / "echo-tool-1.0.0.keelpkg.minisig"));
    CHECK(contains(error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); }), "package signature refused"));
  }
  SECTION("signed by another trusted key than the publisher the index names") {
    auto other = generate_keypair();
    w.home.trust(other.public_key, "other");
    auto sig = sign(other.secret_key, as_bytes(v2), format_binding("package", "echo-tool", "2.0.0", sha256_hex(as_bytes(v2))));
    write_text(dir / "echo-tool-2.0.0.keelpkg.minisig", sig.to_file());
    Plugins q(w.home.options());
    auto err = error_of([&] { q.install_from_marketplace("echo-tool@2.0.0"); });
    INFO(err);
    CHECK(contains(err, "the index says its publisher is " + w.pub.key().public_key.key_id_hex()));
  }
  w.require_intact(w.cached_version());
}

TEST_CASE("a package larger (or smaller) than declared is refused", "[marketplace][attack]") {
  Attacked w;
  auto* e = w.pub.find("echo-tool", "2.0.0");
  const auto real = e->size;
  SECTION("larger") {
    e->size = real - 100;
    w.pub.publish(2);
    auto p = w.plugins();
    p.marketplaces().update("test");
    auto err = error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); });
    INFO(err);
    CHECK(contains(err, "is larger than the " + std::to_string(real - 100) + " bytes the index declares"));
    CHECK(contains(err, "nothing was installed"));
  }
  SECTION("smaller") {
    e->size = real + 100;
    w.pub.publish(2);
    auto p = w.plugins();
    p.marketplaces().update("test");
    auto err = error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); });
    INFO(err);
    CHECK(contains(err, "truncated"));
  }
  w.require_intact(2);
}

TEST_CASE("a signed package with a path-traversal entry is refused and writes nothing", "[marketplace][attack]") {
  Attacked w;
  // A real, validly signed library inside a hostile archive.
  auto lib_path = fs::path(keel::test_modules::echo_tool.library);
  auto lib = read_text(lib_path);
  std::string manifest = R"({"name": "echo-tool", "version": "3.0.0", "kind": "tool", "library": ")" +
                         lib_path.filename().string() + R"("})";
  auto m = ModuleManifest::parse(manifest, "test");
  auto lib_sig = sign(w.pub.key().secret_key, as_bytes(lib), module_binding(m, sha256_hex(as_bytes(lib))));
  auto pkg = w.pub.dir() / "echo-tool-3.0.0.keelpkg";
  write_tar_gz(pkg, {{"module.json", manifest},
                     {lib_path.filename().string(), lib},
                     {lib_path.filename().string() + ".minisig", lib_sig.to_file()},
                     {"../escape.txt", "I got out"}});
  auto bytes = read_text(pkg);
  write_text(pkg.string() + ".minisig",
             sign(w.pub.key().secret_key, as_bytes(bytes), package_binding(m, sha256_hex(as_bytes(bytes)))).to_file());
  IndexPackage e = *w.pub.find("echo-tool", "2.0.0");
  e.version = "3.0.0";
  e.sha256 = sha256_hex(as_bytes(bytes));
  e.size = bytes.size();
  e.file = pkg.filename().string();
  w.pub.entries().push_back(e);
  w.pub.publish(2);

  auto p = w.plugins();
  p.marketplaces().update("test");
  auto err = error_of([&] { p.install_from_marketplace("echo-tool@3.0.0"); });
  INFO(err);
  CHECK(contains(err, "'../escape.txt' refused"));
  CHECK(contains(err, "nothing was installed"));
  for (auto& f : fs::recursive_directory_iterator(w.tmp.path())) CHECK(f.path().filename() != "escape.txt");
  CHECK(!fs::exists(w.home.layout().packages() / "echo-tool-3.0.0.keelpkg"));
  w.require_intact(2);
}

TEST_CASE("an index entry pointing outside its folder is skipped; the rest load", "[marketplace][attack]") {
  Attacked w;
  w.pub.publish(2);
  auto text = read_text(w.pub.dir() / "index.json");
  auto at = text.find("\"file\": \"echo-tool-2.0.0.keelpkg\"");
  REQUIRE(at != std::string::npos);
  text.replace(at, std::string("\"file\": \"echo-tool-2.0.0.keelpkg\"").size(), "\"file\": \"../../home/x.keelpkg\"");
  text.replace(text.find("\"index_version\": 2"), 18, "\"index_version\": 3");
  auto sig = sign(w.pub.key().secret_key, as_bytes(text), index_binding("test", 3, sha256_hex(as_bytes(text))));
  write_text(w.pub.dir() / "index.json", text);
  write_text(w.pub.dir() / "index.json.minisig", sig.to_file());
  auto p = w.plugins();
  auto r = p.marketplaces().update("test");
  CHECK(r.info.package_count == 1);
  REQUIRE(r.warnings.size() == 1);
  CHECK(contains(r.warnings[0], "packages[1] (echo-tool@2.0.0): skipped"));
  CHECK(contains(r.warnings[0], "plain relative path"));
  w.require_intact(3);
}
