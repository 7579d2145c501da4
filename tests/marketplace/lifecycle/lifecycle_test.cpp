// Install, upgrade, downgrade, pin, remove, dependencies, search and trust — through
// keel::market::Plugins against a marketplace folder with real signed packages.
#include "fixture.hpp"

using namespace keel::test;

namespace {

struct World {
  TempDir tmp{"keel-market"};
  Publisher pub{tmp / "market"};
  Home home{tmp / "home"};
  World() { home.trust(pub.key().public_key, "publisher"); }
  Plugins plugins() const { return Plugins(home.options()); }
};

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

TEST_CASE("install from a folder marketplace, then upgrade, downgrade, pin, unpin and remove", "[marketplace][lifecycle]") {
  World w;
  w.pub.add(PackageSpec("echo-tool", "1.0.0"));
  w.pub.publish(1);
  {
    auto p = w.plugins();
    auto r = p.marketplaces().add("test", w.pub.dir().string());
    CHECK(r.info.index_version == 1);
    CHECK(r.info.package_count == 1);
    auto report = p.install_from_marketplace("echo-tool");
    REQUIRE(report.installed.size() == 1);
    CHECK(report.installed[0].version == "1.0.0");
    CHECK(report.installed[0].signer == w.pub.key().public_key.key_id_hex());
  }
  w.home.require_loadable("echo-tool", "1.0.0");
  CHECK(fs::exists(w.home.layout().packages() / "echo-tool-1.0.0.keelpkg"));
  CHECK(fs::exists(w.home.layout().packages() / "echo-tool-1.0.0.keelpkg.minisig"));

  // A new version appears: update, upgrade.
  w.pub.add(PackageSpec("echo-tool", "2.0.0"));
  w.pub.publish(2);
  {
    auto p = w.plugins();
    CHECK(p.marketplaces().update("test").info.index_version == 2);
    auto report = p.upgrade();
    REQUIRE(report.installed.size() == 1);
    CHECK(report.installed[0].version == "2.0.0");
    CHECK(report.installed[0].previous == "1.0.0");
    // Already newest: a note, nothing installed.
    auto again = p.upgrade("echo-tool");
    CHECK(again.installed.empty());
    REQUIRE(again.notes.size() == 1);
    CHECK(contains(again.notes[0], "up to date"));
  }
  w.home.require_loadable("echo-tool", "2.0.0");
  CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"2.0.0"});

  // Downgrade by asking for the exact version.
  {
    auto p = w.plugins();
    auto report = p.install_from_marketplace("echo-tool@1.0.0");
    REQUIRE(report.installed.size() == 1);
    CHECK(report.installed[0].previous == "2.0.0");
  }
  w.home.require_loadable("echo-tool", "1.0.0");
  CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"1.0.0"});

  // Pin: upgrade leaves it alone; installing another version is refused until unpinned.
  {
    auto p = w.plugins();
    auto pin = p.pin("echo-tool@2.0.0");  // not installed yet: installed, other versions kept
    CHECK(pin.installed.size() == 1);
    CHECK(read_text(w.home.layout().modules() / "echo-tool" / "pinned") == "2.0.0\n");
    p.pin("echo-tool@1.0.0");  // installed already: just the pin
  }
  w.home.require_loadable("echo-tool", "1.0.0");
  CHECK(w.home.versions_on_disk("echo-tool") == std::vector<std::string>{"1.0.0", "2.0.0"});
  {
    auto p = w.plugins();
    auto up = p.upgrade();
    CHECK(up.installed.empty());
    REQUIRE(!up.notes.empty());
    CHECK(contains(up.notes[0], "pinned at 1.0.0"));
    auto err = error_of([&] { p.install_from_marketplace("echo-tool@2.0.0"); });
    CHECK(contains(err, "pinned at 1.0.0"));
    auto info = p.installed("echo-tool");
    REQUIRE(info);
    CHECK(info->pinned == "1.0.0");
    CHECK(info->version == "1.0.0");
    p.unpin("echo-tool");
  }
  w.home.require_loadable("echo-tool", "2.0.0");  // highest again

  // Remove: every version, the pin, the downloaded packages.
  {
    auto p = w.plugins();
    p.remove("echo-tool");
    CHECK(!p.installed("echo-tool"));
    CHECK(contains(error_of([&] { p.remove("echo-tool"); }), "not installed"));
  }
  CHECK(!fs::exists(w.home.layout().modules() / "echo-tool"));
  CHECK(!fs::exists(w.home.layout().packages() / "echo-tool-1.0.0.keelpkg"));
  CHECK(!fs::exists(w.home.layout().packages() / "echo-tool-2.0.0.keelpkg"));
  CHECK(w.home.active("echo-tool").empty());
}

TEST_CASE("dependencies are resolved with semver ranges and installed first", "[marketplace][lifecycle]") {
  World w;
  w.pub.add(PackageSpec("base", "1.0.0"));
  w.pub.add(PackageSpec("base", "1.5.0"));
  w.pub.add(PackageSpec("base", "2.0.0"));
  w.pub.add(PackageSpec("app", "1.0.0").deps({{"base", "^1.0.0"}}));
  w.pub.add(PackageSpec("needs-missing", "1.0.0").deps({{"nowhere", "*"}}));
  w.pub.add(PackageSpec("needs-new-base", "1.0.0").deps({{"base", ">=3"}}));
  w.pub.publish(1);
  auto p = w.plugins();
  p.marketplaces().add("test", w.pub.dir().string());

  auto plan = p.plan_install("app");
  REQUIRE(plan.steps.size() == 2);
  CHECK(plan.steps[0].entry.package.id() == "base@1.5.0");
  CHECK(contains(plan.steps[0].why, "dependency of app 1.0.0"));
  CHECK(plan.steps[1].entry.package.id() == "app@1.0.0");
  auto report = p.install(plan);
  CHECK(report.installed.size() == 2);
  CHECK(w.home.active("base") == "1.5.0");
  CHECK(w.home.active("app") == "1.0.0");

  // Installed and in range: not reinstalled.
  auto again = p.plan_install("app");
  CHECK(again.steps.empty());

  // Removing a dependency others need is refused, unless forced.
  CHECK(contains(error_of([&] { p.remove("base"); }), "app 1.0.0 depends on base"));
  // Upgrading base past the range warns about app.
  auto up = p.plan_install("base@2.0.0");
  REQUIRE(!up.warnings.empty());
  CHECK(contains(up.warnings[0], "app 1.0.0 needs base ^1.0.0"));

  CHECK(contains(error_of([&] { p.plan_install("needs-missing"); }), "needs nowhere *, which no marketplace offers"));
  CHECK(contains(error_of([&] { p.plan_install("needs-new-base"); }), "needs base >=3"));
  CHECK(contains(error_of([&] { p.plan_install("unknown-thing"); }), "no marketplace lists"));
  CHECK(contains(error_of([&] { p.plan_install("base@9.9.9"); }), "has no version 9.9.9"));

  p.remove("base", true);
  CHECK(w.home.active("base").empty());
  CHECK(w.home.active("app") == "1.0.0");
}

TEST_CASE("yanked and incompatible versions are not picked", "[marketplace][lifecycle]") {
  World w;
  w.pub.add(PackageSpec("tool-a", "1.0.0"));
  w.pub.add(PackageSpec("tool-a", "1.1.0")).yanked = true;
  w.pub.add(PackageSpec("tool-a", "1.2.0").on(Platform{"linux", "sparc64", "gnu"}));
  w.pub.add(PackageSpec("tool-a", "1.3.0").kernel_abi(AbiRange{"2.0", "2.*"}));
  w.pub.add(PackageSpec("tool-b", "1.0.0")).yanked = true;
  w.pub.publish(1);
  auto p = w.plugins();
  p.marketplaces().add("test", w.pub.dir().string());

  auto plan = p.plan_install("tool-a");
  REQUIRE(plan.steps.size() == 1);
  CHECK(plan.steps[0].entry.package.version == "1.0.0");
  CHECK(contains(error_of([&] { p.plan_install("tool-a@1.2.0"); }), "built for linux/sparc64/gnu"));
  CHECK(contains(error_of([&] { p.plan_install("tool-a@1.3.0"); }), "needs kernel module ABI 2.0"));
  CHECK(contains(error_of([&] { p.plan_install("tool-b"); }), "every version of tool-b is yanked"));
  auto yanked = p.plan_install("tool-a@1.1.0");  // asked for exactly: allowed, with a warning
  REQUIRE(yanked.warnings.size() == 1);
  CHECK(contains(yanked.warnings[0], "yanked"));

  auto found = p.search("tool");
  REQUIRE(found.size() == 2);
  CHECK(found[0].package.id() == "tool-a@1.0.0");
  CHECK(found[1].package.id() == "tool-b@1.0.0");  // nothing installable: the newest is shown
  CHECK(p.search("no-such-text").empty());
  auto versions = p.versions("tool-a");
  REQUIRE(versions.size() == 4);
  CHECK(versions[0].package.version == "1.3.0");
  CHECK(!versions[0].compatible());
}

TEST_CASE("permissions and metadata travel from the index into the install record", "[marketplace][lifecycle]") {
  World w;
  Permissions perms;
  perms.declared = true;
  perms.filesystem = "write";
  perms.network = {"api.example.com"};
  perms.processes = true;
  w.pub.add(PackageSpec("echo-tool", "1.0.0").perms(perms));
  w.pub.publish(1);
  auto o = w.home.options();
  std::vector<std::string> shown;
  o.confirm = [&](const InstallPlan& plan) {
    for (auto& s : plan.steps) shown.push_back(s.entry.package.permissions.filesystem);
    return true;
  };
  Plugins p(o);
  p.marketplaces().add("test", w.pub.dir().string());
  p.install_from_marketplace("echo-tool");
  CHECK(shown == std::vector<std::string>{"write"});
  auto i = p.installed("echo-tool");
  REQUIRE(i);
  CHECK(i->marketplace == "test");
  CHECK(i->publisher == w.pub.key().public_key.key_id_hex());
  CHECK(i->permissions.network == std::vector<std::string>{"api.example.com"});
  CHECK(i->permissions.processes);

  // A confirm callback that says no installs nothing.
  o.confirm = [](const InstallPlan&) { return false; };
  Plugins q(o);
  q.remove("echo-tool");
  CHECK(contains(error_of([&] { q.install_from_marketplace("echo-tool"); }), "cancelled"));
  CHECK(w.home.active("echo-tool").empty());
}

TEST_CASE("the trust store adds, lists and removes keys", "[marketplace][trust]") {
  TempDir tmp{"keel-market"};
  auto kp = generate_keypair();
  write_text(tmp / "someone.pub", kp.public_key.to_file());
  TrustStore store(tmp / "trusted_keys");
  auto k = store.add(tmp / "someone.pub", "alice");
  CHECK(k.id == kp.public_key.key_id_hex());
  CHECK(k.name == "alice");
  CHECK(PublicKey::load(tmp / "trusted_keys" / "alice.pub") == kp.public_key);
  CHECK(store.add(tmp / "someone.pub", "other").name == "alice");  // already trusted: no copy
  auto other = generate_keypair();
  write_text(tmp / "other.pub", other.public_key.to_file());
  CHECK(contains(error_of([&] { store.add(tmp / "other.pub", "alice"); }), "already trusted under the name"));
  auto added = store.add(tmp / "other.pub");
  std::string default_name = other.public_key.key_id_hex();  // the key id, as a file name
  std::transform(default_name.begin(), default_name.end(), default_name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  CHECK(added.name == default_name);
  CHECK(store.list().size() == 2);
  write_text(tmp / "bad.pub", "not a key");
  CHECK(contains(error_of([&] { store.add(tmp / "bad.pub"); }), "not a minisign public key"));
  // By id (any case) or by name.
  std::string id = kp.public_key.key_id_hex();
  std::transform(id.begin(), id.end(), id.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  CHECK(store.remove(id).name == "alice");
  CHECK(store.list().size() == 1);
  CHECK(contains(error_of([&] { store.remove("alice"); }), "no trusted key"));
}

TEST_CASE("marketplaces: add, list, remove; a bad location or name is refused", "[marketplace][sources]") {
  World w;
  w.pub.add(PackageSpec("echo-tool", "1.0.0"));
  w.pub.publish(1);
  auto p = w.plugins();
  auto& m = p.marketplaces();
  CHECK(contains(error_of([&] { m.add("Bad Name", w.pub.dir().string()); }), "invalid marketplace name"));
  CHECK(contains(error_of([&] { m.add("x", (w.tmp / "nowhere").string()); }), "neither a directory nor"));
  m.add("test", (w.pub.dir() / "index.json").string());  // naming the index file works too
  CHECK(contains(error_of([&] { m.add("test", w.pub.dir().string()); }), "already exists"));
  CHECK(m.names() == std::vector<std::string>{"test"});
  CHECK(m.info("test").problem.empty());
  CHECK(m.info("test").location == w.pub.dir().string());
  m.remove("test");
  CHECK(m.names().empty());
  CHECK(contains(error_of([&] { p.plan_install("echo-tool"); }), "no marketplaces configured"));
}
