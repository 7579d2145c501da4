// The same marketplace served over HTTP on loopback.
#include "fixture.hpp"
#include "static_server.hpp"

using namespace keel::test;

namespace {
bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }
}  // namespace

TEST_CASE("add, update and install over HTTP", "[marketplace][http]") {
  TempDir tmp{"keel-market"};
  Publisher pub(tmp / "market");
  Home home(tmp / "home");
  home.trust(pub.key().public_key, "publisher");
  pub.add(PackageSpec("echo-tool", "1.0.0"));
  pub.publish(1);
  StaticServer server(pub.dir());

  auto o = home.options();
  std::uint64_t last_done = 0, last_total = 0;
  std::string last_label;
  o.progress = [&](const std::string& label, std::uint64_t done, std::uint64_t total) {
    if (label != last_label) last_done = 0;
    last_label = label;
    CHECK(done >= last_done);
    last_done = done;
    last_total = total;
  };
  Plugins p(o);
  // A URL naming the folder without its trailing slash works.
  auto url = server.url();
  auto r = p.marketplaces().add("web", url.substr(0, url.size() - 1));
  CHECK(r.info.location == url);
  p.install_from_marketplace("echo-tool");
  home.require_loadable("echo-tool", "1.0.0");
  CHECK(last_total == pub.find("echo-tool", "1.0.0")->size);
  CHECK(last_done == last_total);

  pub.add(PackageSpec("echo-tool", "2.0.0"));
  pub.publish(2);
  CHECK(p.marketplaces().update("web").info.index_version == 2);
  p.upgrade("echo-tool");
  home.require_loadable("echo-tool", "2.0.0");

  SECTION("a server sending more than declared is cut off") {
    pub.add(PackageSpec("echo-tool", "3.0.0"));
    pub.publish(3);
    p.marketplaces().update("web");
    auto declared = pub.find("echo-tool", "3.0.0")->size;
    auto real = read_text(pub.dir() / "echo-tool-3.0.0.keelpkg");
    server.override_body = [&](const std::string& path) -> std::optional<std::string> {
      if (path == "/echo-tool-3.0.0.keelpkg") return real + std::string(1 << 20, 'x');
      return std::nullopt;
    };
    auto err = error_of([&] { p.install_from_marketplace("echo-tool"); });
    INFO(err);
    CHECK(contains(err, "larger than the " + std::to_string(declared) + " bytes the index declares"));
    home.require_loadable("echo-tool", "2.0.0");
  }
  SECTION("a missing package is a clear error") {
    pub.add(PackageSpec("echo-tool", "3.0.0"));
    pub.publish(3);
    p.marketplaces().update("web");
    fs::remove(pub.dir() / "echo-tool-3.0.0.keelpkg");
    auto err = error_of([&] { p.install_from_marketplace("echo-tool"); });
    INFO(err);
    CHECK(contains(err, "HTTP 404"));
    CHECK(contains(err, "nothing was installed"));
    home.require_loadable("echo-tool", "2.0.0");
  }
  SECTION("a dead server keeps the cache") {
    server.override_body = [](const std::string&) -> std::optional<std::string> { return std::string("garbage"); };
    CHECK(contains(error_of([&] { p.marketplaces().update("web"); }), "index refused"));
    CHECK(p.marketplaces().info("web").index_version == 2);
  }
}
