#include <keel/market/archive.hpp>
#include <keel/market/atomic_files.hpp>
#include <keel/market/binding.hpp>
#include <keel/market/plugins.hpp>
#include <keel/market/sha256.hpp>
#include <keel/market/store_lock.hpp>
#include <keel/market/version_range.hpp>

#include "installed_record.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <set>

namespace keel::market {
namespace fs = std::filesystem;

struct Plugins::Impl {
  PluginsOptions o;
  StoreLayout store;
  std::vector<PublicKey> trusted;
  std::unique_ptr<Marketplaces> markets;
  Platform host = host_platform();
  int lock_depth = 0;
  std::unique_ptr<StoreLock> lock;

  explicit Impl(PluginsOptions options) : o(std::move(options)), store{o.keel_home} {
    std::vector<std::string> warnings;
    trusted = load_trusted_keys(store.trusted_keys(), warnings);
    for (auto& w : warnings) warn(w);
    markets = std::make_unique<Marketplaces>(store, trusted, o.allow_legacy_signatures);
    if (o.now) markets->set_now(*o.now);
  }

  void warn(const std::string& s) const {
    if (o.warn) o.warn(s);
  }
  void note(const std::string& s) const {
    if (o.note) o.note(s);
  }
  void fault(std::string_view point) const {
    if (o.fault) o.fault(point);
  }

  // Held by every public mutation; nested calls share it.
  struct Guard {
    Impl& impl;
    explicit Guard(Impl& i) : impl(i) {
      if (impl.lock_depth++ == 0) {
        try {
          impl.store.create_directories();
          impl.lock = std::make_unique<StoreLock>(impl.store.packages().parent_path() / ".lock", [&](const std::string& s) {
            impl.note(s);
          });
          impl.cleanup_stale();
        } catch (...) {
          --impl.lock_depth;
          impl.lock.reset();
          throw;
        }
      }
    }
    ~Guard() {
      if (--impl.lock_depth == 0) impl.lock.reset();
    }
  };

  // Leftovers of an install that was killed: partial downloads, staging folders. Safe to
  // delete: we hold the store lock, so nobody else is writing them.
  void cleanup_stale() const {
    std::error_code ec;
    auto sweep = [&](const fs::path& dir, std::initializer_list<std::string_view> prefixes) {
      for (auto& e : fs::directory_iterator(dir, ec)) {
        auto n = e.path().filename().string();
        for (auto p : prefixes)
          if (n.starts_with(p)) {
            std::error_code ignore;
            fs::remove_all(e.path(), ignore);
            break;
          }
      }
    };
    sweep(store.packages(), {".partial-"});
    sweep(store.modules(), {".install-", ".tmp-", ".removing-"});
    for (auto& e : fs::directory_iterator(store.modules(), ec))
      if (e.is_directory() && !e.path().filename().string().starts_with(".")) sweep(e.path(), {".old-", ".tmp-"});
  }

  std::string incompatibility(const IndexPackage& p) const {
    if (!platform_matches(p.platform, host))
      return "built for " + describe(p.platform) + ", but this machine is " + describe(host);
    if (!abi_compatible(p.abi, kernel_abi_major(), kernel_abi_minor()))
      return "needs kernel module ABI " + (p.abi.min.empty() ? std::string("any") : p.abi.min) + " to " +
             (p.abi.max.empty() ? std::string("any") : p.abi.max) + ", but this keel speaks " +
             std::to_string(kernel_abi_major()) + "." + std::to_string(kernel_abi_minor());
    return {};
  }

  std::vector<CatalogEntry> catalog() const {
    std::vector<CatalogEntry> out;
    for (auto& name : markets->names()) {
      try {
        auto v = markets->load(name);
        for (auto& p : v.parsed.index.packages) out.push_back({name, p, incompatibility(p)});
      } catch (const std::exception& e) {
        warn(e.what());
      }
    }
    return out;
  }

  static std::vector<CatalogEntry> versions_in(const std::vector<CatalogEntry>& cat, std::string_view name) {
    std::vector<CatalogEntry> out;
    for (auto& e : cat)
      if (e.package.name == name) out.push_back(e);
    std::stable_sort(out.begin(), out.end(), [](const CatalogEntry& a, const CatalogEntry& b) {
      int c = compare_versions(a.package.version, b.package.version);
      return c != 0 ? c > 0 : a.marketplace < b.marketplace;
    });
    return out;
  }

  // Newest installable (compatible, not yanked) version of `name` in `range`.
  static const CatalogEntry* best(const std::vector<CatalogEntry>& sorted, std::string_view range,
                                  std::string_view only_marketplace = {}) {
    for (auto& e : sorted)
      if (e.compatible() && !e.package.yanked && satisfies(e.package.version, range) &&
          (only_marketplace.empty() || e.marketplace == only_marketplace))
        return &e;
    return nullptr;
  }

  static std::string available(const std::vector<CatalogEntry>& sorted) {
    std::string s;
    for (auto& e : sorted) {
      if (!s.empty()) s += ", ";
      s += e.package.version;
      if (e.package.yanked) s += " (yanked)";
      else if (!e.compatible()) s += " (incompatible)";
    }
    return s.empty() ? "none" : s;
  }

  std::map<std::string, InstalledPlugin> installed_map() const {
    std::map<std::string, InstalledPlugin> out;
    std::vector<DiscoveryProblem> problems;
    for (auto& m : discover_modules(store.modules(), problems)) {
      InstalledPlugin p;
      p.name = m.manifest.name;
      p.version = m.manifest.version;
      p.kind = m.manifest.kind;
      p.description = m.manifest.description;
      auto dir = store.modules() / p.name;
      std::error_code ec;
      for (auto& e : fs::directory_iterator(dir, ec))
        if (e.is_directory() && !e.path().filename().string().starts_with("."))
          p.versions.push_back(e.path().filename().string());
      std::sort(p.versions.begin(), p.versions.end(),
                [](const std::string& a, const std::string& b) { return compare_versions(a, b) > 0; });
      p.pinned = read_pin(dir);
      read_installed_record(dir, p);
      out.emplace(p.name, std::move(p));
    }
    return out;
  }

  InstallPlan plan(std::string_view spec, bool ignore_pin) const {
    std::string name(spec), version;
    if (auto at = spec.find('@'); at != std::string_view::npos) {
      name = std::string(spec.substr(0, at));
      version = std::string(spec.substr(at + 1));
      if (!valid_version(version)) throw PluginError("'" + version + "' is not a version (want e.g. " + name + "@1.2.0)");
    }
    if (!valid_module_name(name)) throw PluginError("'" + name + "' is not a valid plugin name");
    auto cat = catalog();
    if (markets->names().empty())
      throw PluginError("no marketplaces configured; add one with `keel plugin marketplace add NAME DIR|URL`");
    auto inst = installed_map();
    auto cands = versions_in(cat, name);
    if (cands.empty()) throw PluginError("no marketplace lists a plugin named '" + name + "' (try `keel plugin search`)");

    InstallPlan out;
    const CatalogEntry* chosen = nullptr;
    if (!version.empty()) {
      for (auto& e : cands)
        if (e.package.version == version && (!chosen || (e.compatible() && !chosen->compatible()))) chosen = &e;
      if (!chosen) throw PluginError(name + " has no version " + version + " (available: " + available(cands) + ")");
      if (!chosen->compatible()) throw PluginError(name + " " + version + " cannot run here: " + chosen->incompatibility);
      if (chosen->package.yanked)
        out.warnings.push_back(name + " " + version + " is yanked by its publisher; installing it because you asked for it");
    } else {
      chosen = best(cands, "*");
      if (!chosen) {
        auto& newest = cands.front();
        if (!newest.compatible())
          throw PluginError("no version of " + name + " can run here (newest, " + newest.package.version +
                            ": " + newest.incompatibility + ")");
        throw PluginError("every version of " + name + " is yanked (available: " + available(cands) + ")");
      }
    }
    if (auto it = inst.find(name); !ignore_pin && it != inst.end() && !it->second.pinned.empty() &&
                                   it->second.pinned != chosen->package.version)
      throw PluginError(name + " is pinned at " + it->second.pinned + "; run `keel plugin pin " + name + "@" +
                        chosen->package.version + "` or `keel plugin unpin " + name + "` first");

    std::map<std::string, std::string> chosen_versions;  // name -> version, everything in the plan
    std::set<std::string> noted;
    auto add_step = [&](const CatalogEntry& e, std::string why) {
      auto it = inst.find(e.package.name);
      std::string installed_version = it == inst.end() ? "" : it->second.version;
      bool present = it != inst.end() &&
                     std::find(it->second.versions.begin(), it->second.versions.end(), e.package.version) !=
                         it->second.versions.end();
      if (present && installed_version == e.package.version) {
        out.satisfied.push_back(e.package.name + " " + e.package.version + " (already installed)");
        return false;
      }
      out.steps.push_back({e, std::move(why), installed_version});
      return true;
    };
    std::function<void(const CatalogEntry&, const std::string&)> visit = [&](const CatalogEntry& e,
                                                                               const std::string& why) {
      chosen_versions[e.package.name] = e.package.version;
      for (auto& dep : e.package.dependencies) {
        const std::string who = e.package.name + " " + e.package.version;
        if (auto c = chosen_versions.find(dep.name); c != chosen_versions.end()) {
          if (!satisfies(c->second, dep.range))
            throw PluginError("conflict: " + who + " needs " + dep.name + " " + dep.range + ", but " + dep.name + " " +
                              c->second + " is also required");
          continue;
        }
        auto it = inst.find(dep.name);
        if (it != inst.end() && satisfies(it->second.version, dep.range)) {
          if (noted.insert(dep.name).second)
            out.satisfied.push_back(dep.name + " " + it->second.version + " (installed; " + who + " needs " + dep.range + ")");
          continue;
        }
        if (it != inst.end() && !it->second.pinned.empty())
          throw PluginError(who + " needs " + dep.name + " " + dep.range + ", but " + dep.name + " is pinned at " +
                            it->second.pinned);
        auto dep_cands = versions_in(cat, dep.name);
        auto* pick = best(dep_cands, dep.range);
        if (!pick)
          throw PluginError(who + " needs " + dep.name + " " + dep.range + ", which no marketplace offers (available: " +
                            available(dep_cands) + ")");
        visit(*pick, "dependency of " + who + " (" + dep.range + ")");
      }
      add_step(e, why);
    };
    out.name = chosen->package.name;
    out.version = chosen->package.version;
    visit(*chosen, "requested");

    // Installed plugins that depend on something this plan changes.
    for (auto& [pname, p] : inst)
      for (auto& dep : p.dependencies)
        if (auto c = chosen_versions.find(dep.name);
            c != chosen_versions.end() && pname != dep.name && !chosen_versions.count(pname) &&
            !satisfies(c->second, dep.range))
          out.warnings.push_back(pname + " " + p.version + " needs " + dep.name + " " + dep.range + "; " + dep.name +
                                 " " + c->second + " may break it");
    return out;
  }

  InstalledStep install_one(const PlanStep& step, bool remove_others) {
    const auto& e = step.entry;
    const auto& p = e.package;
    const std::string label = p.name + " " + p.version;
    auto refuse = [&](const std::string& why) {
      return PluginError(label + ": " + why + "; nothing was installed");
    };
    auto src = markets->source(e.marketplace);
    fs::create_directories(store.packages());
    const fs::path partial = store.packages() / (".partial-" + p.name + "-" + p.version + "-" + random_token() + ".keelpkg");
    fs::path partial_sig = partial;
    partial_sig += ".minisig";
    struct Cleanup {
      fs::path a, b;
      ~Cleanup() {
        std::error_code ec;
        fs::remove(a, ec);
        fs::remove(b, ec);
      }
    } cleanup{partial, partial_sig};

    note("downloading " + label + " from " + e.marketplace);
    std::string sig_text, sha;
    try {
      // The download is a cache: install_package() makes the installed module durable.
      FetchOptions fo;
      fo.max_bytes = p.size;
      fo.expected = p.size;
      fo.exact = true;
      fo.sync = false;
      fo.sha256 = &sha;
      if (o.progress) fo.progress = [&](std::uint64_t done, std::uint64_t total) { o.progress(label, done, total); };
      if (o.fault) fo.after_chunk = [&](std::uint64_t) { fault("downloading"); };
      src->fetch_to_file(p.location(), partial, fo);
      fault("downloaded");
      auto sig_bytes = src->fetch(p.location() + ".minisig", FetchOptions::capped(8u << 10));
      sig_text.assign(sig_bytes.begin(), sig_bytes.end());
    } catch (const FetchError& x) {
      throw refuse(x.what());
    }

    // The bytes must be the ones the signed index lists ...
    if (sha != p.sha256)
      throw refuse("the downloaded package is not the one the index lists (its sha256 is " + sha.substr(0, 16) +
                   "…, the index says " + p.sha256.substr(0, 16) + "…): swapped or corrupted");
    // ... signed by the publisher the index names, with a binding equal to the index entry.
    Signature sig;
    std::string comment;
    try {
      sig = Signature::parse(sig_text);
      comment = verify_file_with_any(trusted, partial, sig, VerifyOptions{o.allow_legacy_signatures});
    } catch (const std::exception& x) {
      throw refuse(std::string("package signature refused: ") + x.what());
    }
    if (sig.key_id_hex() != p.publisher)
      throw refuse("the package is signed by key " + sig.key_id_hex() + ", but the index says its publisher is " +
                   p.publisher);
    Binding b;
    try {
      b = parse_binding(comment);
    } catch (const std::exception& x) {
      throw refuse(std::string("the package signature's trusted comment is not a keel binding: ") + x.what());
    }
    if (b.kind != "package" || b.name != p.name || b.version != p.version || b.sha256 != p.sha256)
      throw refuse("the package signature is for " + b.kind + " " + b.name + " " + b.version + " (sha256 " +
                   b.sha256.substr(0, 16) + "…), not for " + label + " as the index lists it (mix-and-match)");
    write_file_durably(partial_sig, sig_text, false);
    const fs::path final_pkg = store.packages() / (p.name + "-" + p.version + ".keelpkg");
    fs::path final_sig = final_pkg;
    final_sig += ".minisig";
    fs::rename(partial_sig, final_sig);
    fs::rename(partial, final_pkg);
    fault("verified");

    InstallResult r;
    try {
      r = install_package(final_pkg, store, trusted, o.allow_legacy_signatures);
    } catch (const std::exception& x) {
      std::error_code ec;
      fs::remove(final_pkg, ec);
      fs::remove(final_sig, ec);
      throw refuse(x.what());
    }
    if (r.module.manifest.kind != p.kind)
      warn(label + ": the index says it is a " + p.kind + ", its manifest says " + r.module.manifest.kind);
    fault("installed");

    auto name_dir = store.modules() / p.name;
    write_installed_record(name_dir, e, r.signer);
    if (remove_others) {
      std::error_code ec;
      for (auto& d : fs::directory_iterator(name_dir, ec)) {
        auto v = d.path().filename().string();
        if (d.is_directory() && !v.starts_with(".") && v != p.version) remove_directory_atomically(d.path());
      }
    }
    fault("done");
    note("installed " + label + (step.replaces.empty() || step.replaces == p.version ? "" : " (was " + step.replaces + ")") +
         ", signed by " + r.signer);
    return {p.name, p.version, step.replaces, r.signer};
  }

  InstallReport run(const InstallPlan& plan, const std::string& pin_name = {}) {
    InstallReport report;
    for (auto& w : plan.warnings) warn(w);
    for (auto& s : plan.satisfied) report.notes.push_back(s);
    if (!plan.steps.empty()) {
      if (o.confirm && !o.confirm(plan)) throw PluginError("install cancelled; nothing was installed");
      for (auto& step : plan.steps)
        report.installed.push_back(install_one(step, step.entry.package.name != pin_name));
    } else if (!plan.name.empty() && plan.name != pin_name) {
      finish_interrupted(plan.name, plan.version);
    }
    return report;
  }

  // The asked-for version is installed and active, but an interrupted install may have left
  // the version it replaced: remove it now (never when the plugin is pinned).
  void finish_interrupted(const std::string& name, const std::string& version) {
    auto dir = store.modules() / name;
    if (!read_pin(dir).empty()) return;
    std::error_code ec;
    for (auto& d : fs::directory_iterator(dir, ec)) {
      auto v = d.path().filename().string();
      if (d.is_directory() && !v.starts_with(".") && v != version) remove_directory_atomically(d.path());
    }
  }
};

static PluginsOptions home_only(fs::path keel_home) {
  PluginsOptions o;
  o.keel_home = std::move(keel_home);
  return o;
}

Plugins::Plugins(fs::path keel_home) : Plugins(home_only(std::move(keel_home))) {}
Plugins::Plugins(PluginsOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Plugins::~Plugins() = default;

Marketplaces& Plugins::marketplaces() { return *impl_->markets; }
const StoreLayout& Plugins::store() const { return impl_->store; }

std::vector<CatalogEntry> Plugins::catalog() { return impl_->catalog(); }

std::vector<CatalogEntry> Plugins::versions(std::string_view name) { return Impl::versions_in(impl_->catalog(), name); }

std::vector<CatalogEntry> Plugins::search(std::string_view text) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  const std::string needle = lower(text);
  auto cat = impl_->catalog();
  std::map<std::string, std::vector<CatalogEntry>> by_name;
  for (auto& e : cat) by_name[e.package.name].push_back(e);
  std::vector<CatalogEntry> out;
  for (auto& [name, entries] : by_name) {
    auto sorted = Impl::versions_in(entries, name);
    const CatalogEntry* pick = Impl::best(sorted, "*");
    if (!pick) pick = &sorted.front();
    const auto& p = pick->package;
    if (!needle.empty() && lower(p.name).find(needle) == std::string::npos &&
        lower(p.description).find(needle) == std::string::npos && lower(p.kind) != needle)
      continue;
    out.push_back(*pick);
  }
  return out;
}

InstallPlan Plugins::plan_install(std::string_view spec) { return impl_->plan(spec, false); }

InstallReport Plugins::install(const InstallPlan& plan) {
  Impl::Guard g(*impl_);
  return impl_->run(plan);
}

InstallReport Plugins::install_from_marketplace(std::string_view spec) {
  Impl::Guard g(*impl_);
  return impl_->run(impl_->plan(spec, false));
}

std::vector<InstalledPlugin> Plugins::installed() const {
  std::vector<InstalledPlugin> out;
  for (auto& [n, p] : impl_->installed_map()) out.push_back(p);
  return out;
}

std::optional<InstalledPlugin> Plugins::installed(std::string_view name) const {
  auto all = impl_->installed_map();
  auto it = all.find(std::string(name));
  if (it == all.end()) return std::nullopt;
  return it->second;
}

InstallReport Plugins::upgrade(std::optional<std::string> name) {
  Impl::Guard g(*impl_);
  auto inst = impl_->installed_map();
  if (name && !inst.count(*name)) throw PluginError(*name + " is not installed");
  auto cat = impl_->catalog();
  InstallReport report;
  for (auto& [n, p] : inst) {
    if (name && n != *name) continue;
    auto cands = Impl::versions_in(cat, n);
    if (cands.empty()) {
      if (name) report.notes.push_back(n + " " + p.version + ": no marketplace lists it; nothing to upgrade");
      continue;
    }
    if (!p.pinned.empty()) {
      report.notes.push_back(n + " is pinned at " + p.pinned + "; not upgraded (`keel plugin unpin " + n + "` to allow)");
      continue;
    }
    auto* pick = Impl::best(cands, "*", p.marketplace);
    if (!pick || compare_versions(pick->package.version, p.version) <= 0) {
      report.notes.push_back(n + " " + p.version + " is up to date");
      continue;
    }
    auto plan = impl_->plan(n + "@" + pick->package.version, false);
    auto r = impl_->run(plan);
    report.installed.insert(report.installed.end(), r.installed.begin(), r.installed.end());
    report.notes.insert(report.notes.end(), r.notes.begin(), r.notes.end());
  }
  return report;
}

void Plugins::remove(std::string_view name_view, bool force) {
  std::string name(name_view);
  if (!valid_module_name(name)) throw PluginError("'" + name + "' is not a valid plugin name");
  Impl::Guard g(*impl_);
  auto dir = impl_->store.modules() / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw PluginError(name + " is not installed");
  if (!force)
    for (auto& [n, p] : impl_->installed_map())
      for (auto& dep : p.dependencies)
        if (dep.name == name && n != name)
          throw PluginError(n + " " + p.version + " depends on " + name + " (" + dep.range + "); remove " + n +
                            " first, or pass --force");
  remove_directory_atomically(dir);
  // Downloaded copies: <name>-<version>.keelpkg (+ .minisig), nothing of other plugins.
  const std::string prefix = name + "-";
  for (auto& e : fs::directory_iterator(impl_->store.packages(), ec)) {
    auto f = e.path().filename().string();
    auto base = f.ends_with(".keelpkg.minisig") ? f.substr(0, f.size() - 8) : f;
    if (!base.starts_with(prefix) || !base.ends_with(".keelpkg")) continue;
    auto v = base.substr(prefix.size(), base.size() - prefix.size() - 8);
    if (valid_version(v)) fs::remove(e.path(), ec);
  }
  impl_->note("removed " + name);
}

InstallReport Plugins::pin(std::string_view spec) {
  auto at = spec.find('@');
  if (at == std::string_view::npos) throw PluginError("pin wants NAME@VERSION");
  std::string name(spec.substr(0, at)), version(spec.substr(at + 1));
  if (!valid_module_name(name) || !valid_version(version)) throw PluginError("pin wants NAME@VERSION, not '" + std::string(spec) + "'");
  Impl::Guard g(*impl_);
  InstallReport report;
  auto dir = impl_->store.modules() / name;
  std::error_code ec;
  if (!fs::exists(dir / version / "module.json", ec)) report = impl_->run(impl_->plan(spec, true), name);
  write_file_durably(dir / "pinned", version + "\n");
  impl_->note(name + " pinned at " + version);
  return report;
}

void Plugins::unpin(std::string_view name_view) {
  std::string name(name_view);
  if (!valid_module_name(name)) throw PluginError("'" + name + "' is not a valid plugin name");
  Impl::Guard g(*impl_);
  auto file = impl_->store.modules() / name / "pinned";
  std::error_code ec;
  if (!fs::exists(file, ec)) throw PluginError(name + " is not pinned");
  fs::remove(file);
  fsync_directory(file.parent_path());
  impl_->note(name + " unpinned");
}

}  // namespace keel::market
