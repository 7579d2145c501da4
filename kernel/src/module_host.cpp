#include <keel/kernel/module_host.hpp>
#include <keel/market/store.hpp>

#include "host_api.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <system_error>
#include <thread>

namespace keel {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Refusal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::size_t kMinDescriptorSize = offsetof(keel_module, stop) + sizeof(void*);

bool valid_kind(std::uint32_t k) { return k >= KEEL_CAP_PROVIDER && k <= KEEL_CAP_UI; }

}  // namespace

ModuleHost::ModuleHost(Bus& bus, ModuleHostOptions options) : impl_(std::make_unique<Impl>(bus, std::move(options))) {}

ModuleHost::~ModuleHost() { impl_->shutdown(); }

const char* ModuleHost::kind_name(keel_capability_kind kind) {
  switch (kind) {
    case KEEL_CAP_PROVIDER: return "provider";
    case KEEL_CAP_TOOL: return "tool";
    case KEEL_CAP_SANDBOX: return "sandbox";
    case KEEL_CAP_POLICY: return "policy";
    case KEEL_CAP_MEMORY: return "memory";
    case KEEL_CAP_UI: return "ui";
  }
  return "unknown";
}

std::string ModuleHost::server_name(keel_capability_kind kind, std::string_view name) {
  return std::string(kind_name(kind)) + "." + std::string(name);
}

std::vector<ModuleInfo> ModuleHost::modules() const {
  std::lock_guard lock(impl_->mu);
  return {impl_->infos.begin(), impl_->infos.end()};
}

std::vector<CapabilityInfo> ModuleHost::capabilities(keel_capability_kind kind) const {
  std::lock_guard lock(impl_->mu);
  std::vector<CapabilityInfo> out;
  for (auto& info : impl_->infos)
    if (info.state == ModuleState::loaded)
      for (auto& c : info.capabilities)
        if (c.kind == kind) out.push_back(c);
  return out;
}

std::optional<CapabilityInfo> ModuleHost::find_capability(keel_capability_kind kind, std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  for (auto& info : impl_->infos)
    if (info.state == ModuleState::loaded)
      for (auto& c : info.capabilities)
        if (c.kind == kind && c.name == name) return c;
  return std::nullopt;
}

bool ModuleHost::ensure_loaded(const std::string& name) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->deferred.find(name);
  if (it != impl_->deferred.end()) {
    auto m = it->second;
    impl_->deferred.erase(it);
    std::erase_if(impl_->infos, [&](const ModuleInfo& i) { return i.name == name && i.state == ModuleState::deferred; });
    impl_->load_one(m, impl_->trusted);
  }
  for (auto& info : impl_->infos)
    if (info.name == name && info.state == ModuleState::loaded) return true;
  return false;
}

void ModuleHost::load_deferred() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(impl_->mu);
    for (auto& [name, m] : impl_->deferred) names.push_back(name);
  }
  for (auto& n : names) ensure_loaded(n);
}

void ModuleHost::load_all() {
  std::lock_guard lock(impl_->mu);
  auto& o = impl_->options;
  market::StoreLayout store{o.keel_home};
  std::vector<std::string> warnings;
  impl_->trusted = market::load_trusted_keys(store.trusted_keys(), warnings);
  for (auto& w : warnings) impl_->log(KEEL_LOG_WARN, w);

  std::vector<market::DiscoveryProblem> problems;
  auto found = market::discover_modules(store.modules(), problems);
  for (auto& dir : o.extra_module_dirs) {
    auto more = market::discover_modules(dir, problems);
    found.insert(found.end(), more.begin(), more.end());
  }
  for (auto& p : problems) {
    ModuleInfo info;
    info.name = p.name;
    info.dir = p.path;
    info.reason = p.reason;
    impl_->refuse(std::move(info));
  }
  std::vector<const market::InstalledModule*> to_load;
  for (auto& m : found) {
    if (o.defer && o.defer(m.manifest.name, m.manifest.kind) && !impl_->deferred.count(m.manifest.name)) {
      ModuleInfo info;
      info.name = m.manifest.name;
      info.version = m.manifest.version;
      info.kind = m.manifest.kind;
      info.description = m.manifest.description;
      info.dir = m.dir;
      info.library = m.library();
      info.state = ModuleState::deferred;
      info.reason = "not loaded: the configuration does not use it";
      impl_->infos.push_back(std::move(info));
      impl_->deferred.emplace(m.manifest.name, m);
      continue;
    }
    to_load.push_back(&m);
  }
  impl_->verify_and_load(to_load);
}

// ---- Impl -------------------------------------------------------------------------------

// Signature checks are independent and CPU-bound, loading is serial (the dynamic loader holds
// one lock): workers verify ahead while this thread loads in discovery order, so start-up
// costs about the larger of the two instead of their sum, and which module wins a duplicate
// name or capability does not depend on thread timing.
void ModuleHost::Impl::verify_and_load(const std::vector<const market::InstalledModule*>& modules) {
  // Workers run at most this far ahead of the loading: verified bytes wait in memory.
  constexpr std::size_t kAhead = 16;
  std::vector<Verification> results(modules.size());
  std::vector<char> done(modules.size(), 0);
  std::mutex results_mu;
  std::condition_variable changed;
  std::size_t loaded = 0;  // modules handed to load_one so far
  bool abandoned = false;  // the loading stopped early (an exception): workers must not wait
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next++) < modules.size();) {
      {
        std::unique_lock lock(results_mu);
        changed.wait(lock, [&] { return i < loaded + kAhead || abandoned; });
        if (abandoned) return;
      }
      auto v = verify(*modules[i], trusted, options.allow_legacy_signatures);
      std::lock_guard lock(results_mu);
      results[i] = std::move(v);
      done[i] = 1;
      changed.notify_all();
    }
  };
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::size_t worker_count = modules.size() < 4 ? 0 : std::min<std::size_t>(cores, 4);
  struct Abandon {  // on any exit, release waiting workers before the jthreads join them
    std::mutex& mu;
    std::condition_variable& cv;
    bool& flag;
    ~Abandon() {
      {
        std::lock_guard lock(mu);
        flag = true;
      }
      cv.notify_all();
    }
  };
  std::vector<std::jthread> workers;
  Abandon release_workers{results_mu, changed, abandoned};  // destroyed before `workers`
  try {
    for (std::size_t w = 0; w < worker_count; ++w) workers.emplace_back(worker);
  } catch (const std::system_error&) {  // no threads to be had (a pids limit): fewer, or none
    worker_count = workers.size();
  }
  for (std::size_t i = 0; i < modules.size(); ++i) {
    Verification v;
    if (worker_count == 0) {
      v = verify(*modules[i], trusted, options.allow_legacy_signatures);
    } else {
      std::unique_lock lock(results_mu);
      changed.wait(lock, [&] { return done[i] != 0; });
      v = std::move(results[i]);
      loaded = i + 1;
      changed.notify_all();
    }
    load_one(*modules[i], std::move(v));
  }
}

void ModuleHost::Impl::log(keel_log_level level, std::string_view message) {
  if (options.log) options.log(level, message);
}

void ModuleHost::Impl::refuse(ModuleInfo info) {
  log(KEEL_LOG_WARN, "module " + (info.name.empty() ? info.dir.string() : info.name) + " refused: " + info.reason);
  infos.push_back(std::move(info));
}

ModuleHost::Impl::Verification ModuleHost::Impl::verify(const market::InstalledModule& m,
                                                        const std::vector<market::PublicKey>& trusted,
                                                        bool allow_legacy) {
  Verification v;
  auto t0 = Clock::now();
  try {
    v.library = market::verify_module_library(m, trusted, allow_legacy);
  } catch (const std::exception& e) {
    v.error = e.what();
  }
  v.ms = ms_since(t0);
  return v;
}

void ModuleHost::Impl::load_one(const market::InstalledModule& m, const std::vector<market::PublicKey>& trusted) {
  load_one(m, verify(m, trusted, options.allow_legacy_signatures));
}

void ModuleHost::Impl::load_one(const market::InstalledModule& m, Verification verified) {
  ModuleInfo info;
  info.name = m.manifest.name;
  info.version = m.manifest.version;
  info.kind = m.manifest.kind;
  info.description = m.manifest.description;
  info.dir = m.dir;
  info.library = m.library();
  for (auto& existing : infos)
    if (existing.name == info.name && existing.state == ModuleState::loaded) {
      info.reason = "another copy of '" + info.name + "' is already loaded from " + existing.dir.string();
      return refuse(std::move(info));
    }
  if (!verified.error.empty()) {
    info.reason = std::move(verified.error);
    return refuse(std::move(info));
  }
  info.signer = verified.library.signer;
  info.verify_ms = verified.ms;

  auto loaded = std::make_unique<Loaded>();
  auto t1 = Clock::now();
  try {
    loaded->lib = SealedLibrary::load(verified.library.bytes, info.name);
    auto& lib = loaded->lib.library();
    if (!lib.has(KEEL_ENTRY_SYMBOL)) throw Refusal("it does not export " KEEL_ENTRY_SYMBOL);
    auto entry = lib.get<const keel_module*(std::uint32_t, std::uint32_t)>(KEEL_ENTRY_SYMBOL);
    const keel_module* d = entry(KEEL_ABI_MAJOR, KEEL_ABI_MINOR);
    if (!d) throw Refusal(KEEL_ENTRY_SYMBOL " returned no descriptor");
    if (d->abi_major != KEEL_ABI_MAJOR)
      throw Refusal("built for module ABI " + std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor) +
                    ", but this keel speaks ABI " + std::to_string(KEEL_ABI_MAJOR) + ".x (major versions must match)");
    if (d->abi_minor > KEEL_ABI_MINOR)
      throw Refusal("built for module ABI " + std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor) +
                    ", newer than this keel's " + std::to_string(KEEL_ABI_MAJOR) + "." + std::to_string(KEEL_ABI_MINOR) +
                    " (upgrade keel)");
    if (d->struct_size < kMinDescriptorSize)
      throw Refusal("descriptor is " + std::to_string(d->struct_size) + " bytes, too small for ABI " +
                    std::to_string(d->abi_major) + "." + std::to_string(d->abi_minor));
    std::memcpy(&loaded->desc, d, std::min<std::size_t>(d->struct_size, sizeof(keel_module)));
    auto& desc = loaded->desc;
    if (!desc.name || info.name != desc.name)
      throw Refusal(std::string("its descriptor names '") + (desc.name ? desc.name : "") + "', not '" + info.name + "'");
    if (!desc.start || !desc.handle || !desc.stop) throw Refusal("its descriptor lacks start/handle/stop");
    if (desc.capability_count > 0 && !desc.capabilities) throw Refusal("its descriptor has no capability table");
    for (std::size_t i = 0; i < desc.capability_count; ++i) {
      auto& c = desc.capabilities[i];
      if (!valid_kind(c.kind) || !c.name || !*c.name) throw Refusal("capability #" + std::to_string(i) + " is malformed");
      CapabilityInfo ci{static_cast<keel_capability_kind>(c.kind), c.flags, c.name, c.description ? c.description : "",
                        c.schema_json ? c.schema_json : "", info.name};
      if (bus.has_server(ModuleHost::server_name(ci.kind, ci.name)))
        throw Refusal(std::string("its ") + kind_name(ci.kind) + " '" + ci.name + "' is already provided by another module");
      info.capabilities.push_back(std::move(ci));
    }
  } catch (const std::exception& e) {
    info.reason = e.what();
    return refuse(std::move(info));
  }

  // Start the instance with its configuration.
  loaded->host.impl = this;
  loaded->host.module = loaded.get();
  loaded->name = info.name;
  std::string config = boost::json::serialize(options.module_config ? options.module_config(info) : boost::json::object{});
  char err[1024] = {0};
  int rc = loaded->desc.start(&host_api(), reinterpret_cast<keel_host*>(&loaded->host),
                              keel_str{config.data(), config.size()}, &loaded->instance, err, sizeof err);
  info.load_ms = ms_since(t1);
  if (rc != KEEL_OK) {
    info.state = ModuleState::failed_to_start;
    info.reason = std::string("start failed: ") + (err[0] ? err : "no reason given");
    log(KEEL_LOG_WARN, "module " + info.name + " failed to start: " + info.reason);
    infos.push_back(std::move(info));
    return;  // keep nothing of it; the library unloads with `loaded`
  }
  for (auto& c : info.capabilities) serve(*loaded, c);
  info.state = ModuleState::loaded;
  infos.push_back(std::move(info));
  loaded_modules.push_back(std::move(loaded));
}

void ModuleHost::Impl::serve(Loaded& module, const CapabilityInfo& cap) {
  auto server = ModuleHost::server_name(cap.kind, cap.name);
  module.servers.push_back(server);
  bus.serve(server, [this, &module, name = cap.name](const RequestPtr& req) { dispatch(module, name, req); });
}

void ModuleHost::Impl::dispatch(Loaded& module, const std::string& capability, const RequestPtr& req) {
  auto* box = new CallBox{req, &module};
  ++module.in_flight;
  register_call(box);
  module.desc.handle(module.instance, reinterpret_cast<keel_call*>(box), keel_str{capability.data(), capability.size()},
                     keel_str{req->method().data(), req->method().size()},
                     keel_str{req->payload().data(), req->payload().size()});
}

void ModuleHost::Impl::shutdown() {
  // Stop in reverse load order: servers first, wait for calls in flight, stop, unload.
  for (auto it = loaded_modules.rbegin(); it != loaded_modules.rend(); ++it) {
    auto& m = **it;
    for (auto& s : m.servers) bus.unserve(s);
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (m.in_flight.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::vector<std::uint64_t> subs;
    {
      std::lock_guard lock(m.mu);
      subs.assign(m.subscriptions.begin(), m.subscriptions.end());
    }
    for (auto id : subs) bus.unsubscribe(id);
    if (m.in_flight.load() > 0) {
      // It still holds calls: stopping it now could free what they use. Never unload it.
      log(KEEL_LOG_WARN, "module " + m.name + " still has calls in flight at shutdown; leaving it loaded");
      // Its library and everything its host handle points at (in-flight count, subscriptions,
      // host context) must outlive those calls: keep the whole record, deliberately leaked.
      (void)it->release();
      continue;
    }
    m.desc.stop(m.instance);
  }
  loaded_modules.clear();
}

}  // namespace keel
