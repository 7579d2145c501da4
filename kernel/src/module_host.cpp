#include <keel/kernel/module_host.hpp>
#include <keel/market/store.hpp>

#include "host_api.hpp"

#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#include <boost/dll/shared_library.hpp>
#include <boost/json/serialize.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstring>
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

// Copies the verified bytes into a sealed memfd and loads that, so what runs is exactly what
// was verified even if the file on disk changes in between. The loader is given a unique
// private symlink to the memfd: it recognises libraries by name, and /proc/self/fd/N names
// repeat as descriptor numbers are reused.
boost::dll::shared_library load_verified(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  int fd = memfd_create(("keel-module-" + name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw Refusal(std::string("memfd_create failed: ") + std::strerror(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Refusal(std::string("cannot stage library: ") + std::strerror(errno));
    off += static_cast<std::size_t>(n);
  }
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);

  std::string dir_template = (fs::temp_directory_path() / "keel-load-XXXXXX").string();
  if (!mkdtemp(dir_template.data())) throw Refusal(std::string("cannot make a private directory: ") + std::strerror(errno));
  static std::atomic<unsigned> counter{0};
  fs::path dir(dir_template);
  fs::path link = dir / ("lib" + name + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".so");
  std::error_code ec;
  fs::create_symlink("/proc/self/fd/" + std::to_string(fd), link, ec);
  if (ec) {
    fs::remove_all(dir, ec);
    throw Refusal("cannot stage library: " + ec.message());
  }
  try {
    boost::dll::shared_library lib(link, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
    fs::remove_all(dir, ec);
    return lib;
  } catch (const std::exception& e) {
    fs::remove_all(dir, ec);
    throw Refusal(std::string("the dynamic loader refused it: ") + e.what());
  }
}

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
  auto& trusted = impl_->trusted;
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
    impl_->load_one(m, trusted);
  }
}

// ---- Impl -------------------------------------------------------------------------------

void ModuleHost::Impl::log(keel_log_level level, std::string_view message) {
  if (options.log) options.log(level, message);
}

void ModuleHost::Impl::refuse(ModuleInfo info) {
  log(KEEL_LOG_WARN, "module " + (info.name.empty() ? info.dir.string() : info.name) + " refused: " + info.reason);
  infos.push_back(std::move(info));
}

void ModuleHost::Impl::load_one(const market::InstalledModule& m, const std::vector<market::PublicKey>& trusted) {
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

  auto t0 = Clock::now();
  market::VerifiedLibrary verified;
  try {
    verified = market::verify_module_library(m, trusted, options.allow_legacy_signatures);
  } catch (const std::exception& e) {
    info.reason = e.what();
    return refuse(std::move(info));
  }
  info.signer = verified.signer;
  info.verify_ms = ms_since(t0);

  auto loaded = std::make_unique<Loaded>();
  auto t1 = Clock::now();
  try {
    loaded->lib = load_verified(verified.bytes, info.name);
    if (!loaded->lib.has(KEEL_ENTRY_SYMBOL)) throw Refusal("it does not export " KEEL_ENTRY_SYMBOL);
    auto entry = loaded->lib.get<const keel_module*(std::uint32_t, std::uint32_t)>(KEEL_ENTRY_SYMBOL);
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
      new boost::dll::shared_library(std::move(m.lib));  // deliberately leaked
      continue;
    }
    m.desc.stop(m.instance);
  }
  loaded_modules.clear();
}

}  // namespace keel
