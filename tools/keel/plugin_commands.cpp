#include "plugin_commands.hpp"

#include <keel/kernel/config.hpp>
#include <keel/market/plugins.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace keel::cli {
namespace json = boost::json;
using namespace keel::market;

namespace {

struct PluginUsage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string human_size(std::uint64_t n) {
  char buf[32];
  if (n < 1024) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else if (n < (1u << 20)) std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(n) / 1024);
  else std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(n) / (1024.0 * 1024));
  return buf;
}

std::string describe(const Permissions& p) {
  if (!p.declared) return "none declared";
  std::string net = "none";
  if (!p.network.empty()) {
    net.clear();
    for (auto& h : p.network) net += (net.empty() ? "" : ",") + (h == "*" ? std::string("any host") : h);
  }
  return "filesystem " + p.filesystem + ", network " + net + ", processes " + (p.processes ? "yes" : "no");
}

// Draws "  hello 1.0.0 [#####.....]  45%  2.3 MB / 5.0 MB" on a terminal; nothing otherwise.
class ProgressBar {
 public:
  ProgressBar() : tty_(::isatty(STDERR_FILENO) != 0) {}
  void operator()(const std::string& label, std::uint64_t done, std::uint64_t total) {
    if (!tty_ || total == 0) return;
    int pct = static_cast<int>(done * 100 / total);
    if (label == label_ && pct == last_ && done != total) return;
    label_ = label;
    last_ = pct;
    constexpr int width = 30;
    int fill = pct * width / 100;
    std::fprintf(stderr, "\r  %s [%s%s] %3d%%  %s / %s", label.c_str(), std::string(fill, '#').c_str(),
                 std::string(width - fill, '.').c_str(), pct, human_size(done).c_str(), human_size(total).c_str());
    if (done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::string label_;
  int last_ = -1;
};

struct Cli {
  std::vector<std::string> pos;
  bool json = false, force = false;
  ProgressBar bar;

  PluginsOptions options() {
    PluginsOptions o;
    o.keel_home = default_keel_home();
    o.warn = [](const std::string& s) { std::cerr << "warning: " << s << "\n"; };
    o.note = [](const std::string& s) { std::cerr << s << "\n"; };
    o.progress = [this](const std::string& l, std::uint64_t d, std::uint64_t t) { bar(l, d, t); };
    o.confirm = [](const InstallPlan& plan) {
      std::cout << "to install:\n";
      for (auto& s : plan.steps) {
        auto& p = s.entry.package;
        std::cout << "  " << p.name << " " << p.version << (s.replaces.empty() ? "" : " (replacing " + s.replaces + ")")
                  << " from " << s.entry.marketplace << ", " << human_size(p.size) << ", publisher " << p.publisher
                  << " — " << s.why << "\n"
                  << "    permissions asked for: " << describe(p.permissions) << "\n";
      }
      std::cout << std::flush;
      return true;
    };
    return o;
  }

  const std::string& arg(std::size_t i, const char* what) const {
    if (i >= pos.size()) throw PluginUsage(std::string("missing ") + what);
    return pos[i];
  }
  void no_more(std::size_t n) const {
    if (pos.size() > n) throw PluginUsage("unexpected argument '" + pos[n] + "'");
  }
};

void print_report(const InstallReport& r) {
  for (auto& n : r.notes) std::cout << n << "\n";
  if (r.installed.empty() && r.notes.empty()) std::cout << "nothing to do\n";
}

int marketplace_cmd(Cli& c) {
  const std::string& sub = c.arg(1, "marketplace command (add, list, update, remove)");
  Plugins plugins(c.options());
  auto& m = plugins.marketplaces();
  auto show_warnings = [](const UpdateResult& r) {
    for (auto& w : r.warnings) std::cerr << "warning: " << w << "\n";
  };
  if (sub == "add") {
    c.no_more(4);
    auto r = m.add(c.arg(2, "NAME"), c.arg(3, "DIR or URL"));
    show_warnings(r);
    std::cout << "added marketplace " << r.info.name << " (" << r.info.location << "): index_version "
              << r.info.index_version << ", " << r.info.package_count << " package(s), signed by " << r.info.signer
              << ", expires " << r.info.expires << "\n";
    return 0;
  }
  if (sub == "list") {
    c.no_more(2);
    json::array out;
    for (auto& name : m.names()) {
      auto i = m.info(name);
      if (c.json) {
        out.push_back(json::object{{"name", i.name},         {"location", i.location}, {"index_version", i.index_version},
                                   {"expires", i.expires},   {"signer", i.signer},     {"packages", i.package_count},
                                   {"problem", i.problem}});
        continue;
      }
      std::cout << i.name << "  " << i.location;
      if (i.problem.empty())
        std::cout << "  index_version " << i.index_version << ", " << i.package_count << " package(s), expires "
                  << i.expires << "\n";
      else
        std::cout << "\n  unusable: " << i.problem << "\n";
    }
    if (c.json) std::cout << json::serialize(out) << "\n";
    else if (m.names().empty()) std::cout << "no marketplaces (add one with `keel plugin marketplace add NAME DIR|URL`)\n";
    return 0;
  }
  if (sub == "update") {
    c.no_more(3);
    std::vector<std::string> names = c.pos.size() > 2 ? std::vector<std::string>{c.pos[2]} : m.names();
    int rc = 0;
    for (auto& name : names) {
      try {
        auto r = m.update(name);
        show_warnings(r);
        std::cout << name << ": index_version " << r.info.index_version
                  << (r.previous_version == r.info.index_version ? " (unchanged)" : "") << ", "
                  << r.info.package_count << " package(s), expires " << r.info.expires << "\n";
      } catch (const std::exception& e) {
        std::cerr << "keel plugin marketplace update: " << e.what() << " (the cached index is kept)\n";
        rc = 1;
      }
    }
    return rc;
  }
  if (sub == "remove") {
    c.no_more(3);
    m.remove(c.arg(2, "NAME"));
    std::cout << "removed marketplace " << c.pos[2] << " (installed plugins stay installed)\n";
    return 0;
  }
  throw PluginUsage("unknown marketplace command '" + sub + "'");
}

json::object entry_json(const CatalogEntry& e) {
  auto& p = e.package;
  return json::object{{"name", p.name},
                      {"version", p.version},
                      {"kind", p.kind},
                      {"description", p.description},
                      {"marketplace", e.marketplace},
                      {"publisher", p.publisher},
                      {"size", p.size},
                      {"yanked", p.yanked},
                      {"compatible", e.compatible()},
                      {"incompatibility", e.incompatibility}};
}

int search_cmd(Cli& c) {
  c.no_more(2);
  Plugins plugins(c.options());
  auto results = plugins.search(c.pos.size() > 1 ? c.pos[1] : "");
  if (c.json) {
    json::array out;
    for (auto& e : results) out.push_back(entry_json(e));
    std::cout << json::serialize(out) << "\n";
    return 0;
  }
  if (results.empty()) std::cout << "no plugins found\n";
  for (auto& e : results) {
    auto& p = e.package;
    auto inst = plugins.installed(p.name);
    std::cout << p.name << " " << p.version << "  (" << p.kind << ", " << e.marketplace << ")"
              << (inst ? "  [installed " + inst->version + "]" : "") << "\n    " << p.description << "\n";
    if (!e.compatible()) std::cout << "    cannot run here: " << e.incompatibility << "\n";
  }
  return 0;
}

int info_cmd(Cli& c) {
  c.no_more(2);
  const std::string& name = c.arg(1, "NAME");
  Plugins plugins(c.options());
  auto versions = plugins.versions(name);
  auto inst = plugins.installed(name);
  if (c.json) {
    json::array out;
    for (auto& e : versions) out.push_back(entry_json(e));
    std::cout << json::serialize(json::object{{"name", name},
                                              {"installed", inst ? json::value(inst->version) : json::value(nullptr)},
                                              {"pinned", inst ? inst->pinned : ""},
                                              {"versions", std::move(out)}})
              << "\n";
    return versions.empty() && !inst ? 1 : 0;
  }
  if (versions.empty() && !inst) {
    std::cerr << "keel plugin info: no marketplace lists '" << name << "' and it is not installed\n";
    return 1;
  }
  std::cout << name;
  if (!versions.empty()) std::cout << " — " << versions.front().package.description;
  std::cout << "\n";
  if (inst)
    std::cout << "  installed: " << inst->version << (inst->pinned.empty() ? "" : " (pinned)")
              << (inst->marketplace.empty() ? "" : " from " + inst->marketplace) << "\n";
  if (!versions.empty()) {
    auto& p = versions.front().package;
    std::cout << "  kind: " << p.kind << "\n  publisher: " << p.publisher
              << "\n  platform: " << market::describe(p.platform)
              << "\n  kernel ABI: " << (p.abi.min.empty() ? "any" : p.abi.min) << " to "
              << (p.abi.max.empty() ? "any" : p.abi.max) << "\n  permissions: " << describe(p.permissions) << "\n";
    if (!p.dependencies.empty()) {
      std::cout << "  dependencies:";
      for (auto& d : p.dependencies) std::cout << " " << d.name << " " << d.range << ";";
      std::cout << "\n";
    }
    std::cout << "  versions:\n";
    for (auto& e : versions)
      std::cout << "    " << e.package.version << "  " << e.marketplace << "  " << human_size(e.package.size)
                << (e.package.yanked ? "  yanked" : "") << (e.compatible() ? "" : "  cannot run here: " + e.incompatibility)
                << "\n";
  }
  return 0;
}

int list_cmd(Cli& c) {
  c.no_more(1);
  Plugins plugins(c.options());
  auto all = plugins.installed();
  if (c.json) {
    json::array out;
    for (auto& p : all) {
      json::array versions;
      for (auto& v : p.versions) versions.push_back(json::string(v));
      out.push_back(json::object{{"name", p.name},        {"version", p.version},         {"kind", p.kind},
                                 {"pinned", p.pinned},    {"marketplace", p.marketplace}, {"publisher", p.publisher},
                                 {"versions", std::move(versions)}});
    }
    std::cout << json::serialize(out) << "\n";
    return 0;
  }
  if (all.empty()) std::cout << "no plugins installed\n";
  for (auto& p : all) {
    std::cout << p.name << " " << p.version << "  (" << p.kind << ")";
    if (!p.pinned.empty()) std::cout << "  pinned";
    std::cout << "  " << (p.marketplace.empty() ? "local" : "from " + p.marketplace);
    if (p.versions.size() > 1) {
      std::cout << "  [also installed:";
      for (auto& v : p.versions)
        if (v != p.version) std::cout << " " << v;
      std::cout << "]";
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

const char* plugin_usage() {
  return "usage: keel plugin marketplace add NAME DIR|URL   add a marketplace (its index is verified first)\n"
         "       keel plugin marketplace list [--json]\n"
         "       keel plugin marketplace update [NAME]\n"
         "       keel plugin marketplace remove NAME\n"
         "       keel plugin search [TEXT] [--json]\n"
         "       keel plugin info NAME [--json]\n"
         "       keel plugin install NAME[@VERSION]...      resolve, download, verify, unpack\n"
         "       keel plugin list [--json]\n"
         "       keel plugin upgrade [NAME]\n"
         "       keel plugin remove NAME [--force]\n"
         "       keel plugin pin NAME@VERSION               keep NAME at VERSION (installs it if needed)\n"
         "       keel plugin unpin NAME\n"
         "Publishers' keys must be trusted first: keel trust add FILE.pub\n";
}

int run_plugin(int argc, char** argv) {
  Cli c;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json") c.json = true;
    else if (a == "--force") c.force = true;
    else if (a == "-h" || a == "--help") {
      std::cout << plugin_usage();
      return 0;
    } else if (a.size() > 1 && a[0] == '-') {
      std::cerr << "keel plugin: unknown option " << a << "\n" << plugin_usage();
      return 2;
    } else {
      c.pos.push_back(a);
    }
  }
  if (c.pos.empty()) {
    std::cerr << plugin_usage();
    return 2;
  }
  const std::string cmd = c.pos[0];
  try {
    if (cmd == "marketplace") return marketplace_cmd(c);
    if (cmd == "search") return search_cmd(c);
    if (cmd == "info") return info_cmd(c);
    if (cmd == "list") return list_cmd(c);
    if (cmd == "install") {
      c.arg(1, "NAME[@VERSION]");
      Plugins plugins(c.options());
      for (std::size_t i = 1; i < c.pos.size(); ++i) print_report(plugins.install_from_marketplace(c.pos[i]));
      return 0;
    }
    if (cmd == "upgrade") {
      c.no_more(2);
      Plugins plugins(c.options());
      print_report(plugins.upgrade(c.pos.size() > 1 ? std::optional<std::string>(c.pos[1]) : std::nullopt));
      return 0;
    }
    if (cmd == "remove") {
      c.no_more(2);
      Plugins plugins(c.options());
      plugins.remove(c.arg(1, "NAME"), c.force);
      return 0;
    }
    if (cmd == "pin") {
      c.no_more(2);
      Plugins plugins(c.options());
      plugins.pin(c.arg(1, "NAME@VERSION"));
      return 0;
    }
    if (cmd == "unpin") {
      c.no_more(2);
      Plugins plugins(c.options());
      plugins.unpin(c.arg(1, "NAME"));
      return 0;
    }
    throw PluginUsage("unknown command '" + cmd + "'");
  } catch (const PluginUsage& e) {
    std::cerr << "keel plugin: " << e.what() << "\n" << plugin_usage();
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "keel plugin " << cmd << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace keel::cli
