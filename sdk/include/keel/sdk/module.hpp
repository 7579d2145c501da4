// keel::sdk::Module and KEEL_MODULE: turn a C++ class into a module behind the C ABI.
//
//   class Echo : public keel::sdk::Module {
//    public:
//     Echo(keel::sdk::Host& host, const boost::json::object& config) {}
//     void handle(keel::sdk::Call call) override { call.ok(call.payload()); }
//   };
//   static const keel_capability caps[] = {{KEEL_CAP_TOOL, KEEL_FLAG_PARALLEL_SAFE, "echo", "...", "{}"}};
//   KEEL_MODULE(Echo, "echo", "1.0.0", "Echoes its input", caps)
//
// Every exception stops at the boundary: start() reports it as an error message, handle()
// turns it into an error reply (unless the call was already answered).
#pragma once

#include <keel/abi.h>
#include <keel/sdk/call.hpp>
#include <keel/sdk/host.hpp>
#include <keel/sdk/strings.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <cstring>
#include <algorithm>
#include <exception>
#include <optional>
#include <memory>
#include <string>

namespace keel::sdk {

class Module {
 public:
  virtual ~Module() = default;
  // Called on a host thread that may wait; answer `call` exactly once, now or later.
  virtual void handle(Call call) = 0;
};

namespace detail {

inline void copy_error(char* err, std::size_t err_len, std::string_view message) {
  if (!err || err_len == 0) return;
  std::size_t n = std::min(message.size(), err_len - 1);
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

template <class T>
struct Instance {
  Instance(const keel_host_api* api, keel_host* h, const boost::json::object& config)
      : host(api, h), module(host, config) {}
  Host host;
  T module;
};

template <class T>
int start(const keel_host_api* api, keel_host* host, keel_str config_json, void** instance, char* err,
          std::size_t err_len) noexcept {
  try {
    boost::json::object config;
    auto text = to_view(config_json);
    if (!text.empty()) {
      auto parsed = boost::json::parse(text);
      if (parsed.is_object()) config = std::move(parsed.as_object());
    }
    *instance = new Instance<T>(api, host, config);
    return KEEL_OK;
  } catch (const std::exception& e) {
    copy_error(err, err_len, e.what());
  } catch (...) {
    copy_error(err, err_len, "unknown exception while starting");
  }
  return KEEL_ERR_INTERNAL;
}

template <class T>
void handle(void* instance, keel_call* call, keel_str capability, keel_str method, keel_str payload) noexcept {
  auto* self = static_cast<Instance<T>*>(instance);
  std::optional<Call> keep;  // our own reference, so an exception can still be answered
  try {
    keep.emplace(self->host.api(), call, to_view(capability), to_view(method), to_view(payload));
    self->module.handle(*keep);
  } catch (const std::exception& e) {
    if (keep) keep->error(KEEL_ERR_INTERNAL, e.what());
    else self->host.api()->reply(call, KEEL_ERR_INTERNAL, to_keel_str(R"({"error":{"message":"out of memory"}})"));
  } catch (...) {
    if (keep) keep->error(KEEL_ERR_INTERNAL, "unknown exception in module");
  }
}

template <class T>
void stop(void* instance) noexcept {
  try {
    delete static_cast<Instance<T>*>(instance);
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace keel::sdk

// Emits the descriptor and the one exported entry point.
#define KEEL_MODULE(Type, NAME, VERSION, DESCRIPTION, CAPABILITIES)                                  \
  extern "C" KEEL_EXPORT const keel_module* keel_module_entry(uint32_t, uint32_t) {                  \
    static const keel_module descriptor = {                                                          \
        KEEL_ABI_MAJOR, KEEL_ABI_MINOR, sizeof(keel_module), NAME, VERSION, DESCRIPTION,             \
        CAPABILITIES, sizeof(CAPABILITIES) / sizeof((CAPABILITIES)[0]), &keel::sdk::detail::start<Type>, \
        &keel::sdk::detail::handle<Type>, &keel::sdk::detail::stop<Type>};                           \
    return &descriptor;                                                                              \
  }
