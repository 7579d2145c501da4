// Internals of the module host shared by module_host.cpp and host_api.cpp.
#pragma once

#include <keel/abi.h>
#include <keel/kernel/module_host.hpp>
#include <keel/market/store.hpp>

#include "sealed_library.hpp"

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_set>

namespace keel {

struct ModuleHostLoaded;

// What a keel_host* points at: one per loaded module.
struct HostContext {
  ModuleHost::Impl* impl = nullptr;
  ModuleHostLoaded* module = nullptr;
};

struct ModuleHostLoaded {
  std::string name;
  SealedLibrary lib;  // declared first among owners: destroyed last
  keel_module desc{};
  void* instance = nullptr;
  HostContext host;
  std::vector<std::string> servers;
  std::atomic<int> in_flight{0};
  std::mutex mu;
  std::set<std::uint64_t> subscriptions;
};

// What a keel_call* points at: one per request handed to a module.
struct CallBox {
  RequestPtr request;
  ModuleHostLoaded* module;
};

struct ModuleHost::Impl {
  using Loaded = ModuleHostLoaded;
  Impl(Bus& b, ModuleHostOptions o) : bus(b), options(std::move(o)) {}

  Bus& bus;
  ModuleHostOptions options;
  mutable std::mutex mu;  // guards infos, deferred, trusted (loading may happen on any thread)
  std::deque<ModuleInfo> infos;
  std::map<std::string, market::InstalledModule> deferred;
  std::vector<market::PublicKey> trusted;
  std::vector<std::unique_ptr<Loaded>> loaded_modules;

  void log(keel_log_level level, std::string_view message);
  void refuse(ModuleInfo info);
  // Loading is two steps so that load_all can verify on worker threads while it loads:
  // verify() reads and checks the signature (any thread, touches no state), then
  // load_one() maps the verified bytes, negotiates the ABI and starts the module.
  struct Verification {
    market::VerifiedLibrary library;
    std::string error;  // empty when verified
    double ms = 0;
  };
  static Verification verify(const market::InstalledModule& m, const std::vector<market::PublicKey>& trusted,
                             bool allow_legacy);
  void load_one(const market::InstalledModule& m, const std::vector<market::PublicKey>& trusted);
  void load_one(const market::InstalledModule& m, Verification verified);
  void verify_and_load(const std::vector<const market::InstalledModule*>& modules);
  void serve(Loaded& module, const CapabilityInfo& cap);
  void dispatch(Loaded& module, const std::string& capability, const RequestPtr& req);
  void shutdown();
};

const keel_host_api& host_api();
// Makes a call handle valid for emit/reply until its one reply.
void register_call(CallBox* box);

}  // namespace keel
