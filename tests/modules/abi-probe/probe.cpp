// The ABI probe: one tiny module compiled several ways (see tests/modules/CMakeLists.txt).
//
//   PROBE_NAME             the module's name (manifest) and its one tool's name
//   PROBE_DESCRIPTOR_NAME  the name its descriptor claims (default: PROBE_NAME)
//   PROBE_MODE             PROBE_NORMAL, PROBE_NULL_DESCRIPTOR (the entry point returns NULL),
//                          PROBE_TINY_DESCRIPTOR (struct_size covers only the version prefix),
//                          PROBE_START_FAILS (start() reports an error)
//   KEEL_ABI_MAJOR/MINOR   the ABI version it claims to be built for (abi.h's defaults if unset)
//
// Its tool replies with what the module saw of the host: the version the host passed to the
// entry point and the version of the host function table.
#include <keel/sdk/module.hpp>

#include <boost/json/serialize.hpp>

#include <atomic>
#include <cstddef>
#include <stdexcept>

#define PROBE_NORMAL 0
#define PROBE_NULL_DESCRIPTOR 1
#define PROBE_TINY_DESCRIPTOR 2
#define PROBE_START_FAILS 3

#ifndef PROBE_NAME
#error "PROBE_NAME must be defined"
#endif
#ifndef PROBE_DESCRIPTOR_NAME
#define PROBE_DESCRIPTOR_NAME PROBE_NAME
#endif
#ifndef PROBE_MODE
#define PROBE_MODE PROBE_NORMAL
#endif

namespace {

std::atomic<std::uint32_t> g_entry_major{0}, g_entry_minor{0};

class Probe : public keel::sdk::Module {
 public:
  Probe(keel::sdk::Host& host, const boost::json::object&) : host_(host) {
#if PROBE_MODE == PROBE_START_FAILS
    throw std::runtime_error("the probe was built to fail at start");
#endif
  }

  void handle(keel::sdk::Call call) override {
    const keel_host_api* api = host_.api();
    call.ok(boost::json::serialize(boost::json::object{
        {"module", PROBE_NAME},
        {"module_abi", boost::json::array{KEEL_ABI_MAJOR, KEEL_ABI_MINOR}},
        {"entry_host_abi", boost::json::array{g_entry_major.load(), g_entry_minor.load()}},
        {"host_api_abi", boost::json::array{api->abi_major, api->abi_minor}},
        {"host_api_size", api->struct_size},
        {"output", "probe " PROBE_NAME},
        {"success", true}}));
  }

 private:
  keel::sdk::Host& host_;
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_TOOL, KEEL_FLAG_PARALLEL_SAFE, PROBE_NAME, "Reports the ABI versions the module and host agreed on",
     R"({"type":"object","properties":{}})"},
};

}  // namespace

extern "C" KEEL_EXPORT const keel_module* keel_module_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
  g_entry_major = host_abi_major;
  g_entry_minor = host_abi_minor;
#if PROBE_MODE == PROBE_TINY_DESCRIPTOR
  constexpr std::uint32_t size = offsetof(keel_module, name);
#else
  constexpr std::uint32_t size = sizeof(keel_module);
#endif
  static const keel_module descriptor = {KEEL_ABI_MAJOR,
                                         KEEL_ABI_MINOR,
                                         size,
                                         PROBE_DESCRIPTOR_NAME,
                                         "1.0.0",
                                         "ABI probe " PROBE_NAME,
                                         kCapabilities,
                                         sizeof(kCapabilities) / sizeof(kCapabilities[0]),
                                         &keel::sdk::detail::start<Probe>,
                                         &keel::sdk::detail::handle<Probe>,
                                         &keel::sdk::detail::stop<Probe>};
#if PROBE_MODE == PROBE_NULL_DESCRIPTOR
  (void)descriptor;
  return nullptr;
#else
  return &descriptor;
#endif
}
