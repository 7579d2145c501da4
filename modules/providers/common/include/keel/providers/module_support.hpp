// The part of a provider module that is the same for every wire format: reading the module
// config, dispatching `stream` / `models`, turning deltas into emits and results into the
// one reply. Header-only: include it from a module's module.cpp only.
//
//   class OpenAIChat : public keel::providers::ProviderModule {
//    public:
//     OpenAIChat(keel::sdk::Host& h, const boost::json::object& c)
//         : ProviderModule(h, c, {&chat::defaults, &chat::stream, &chat::models}) {}
//   };
#pragma once

#include <keel/providers/config.hpp>
#include <keel/providers/errors.hpp>
#include <keel/providers/stream.hpp>
#include <keel/sdk/module.hpp>

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <optional>
#include <string>

namespace keel::providers {

struct ProviderFns {
  ProviderDefaults (*defaults)();
  Reply (*stream)(const ProviderConfig&, const boost::json::object&, const EmitFn&, const CancelFn&);
  Reply (*models)(const ProviderConfig&, const CancelFn&);  // may be null
};

class ProviderModule : public keel::sdk::Module {
 public:
  ProviderModule(keel::sdk::Host& host, const boost::json::object& config, ProviderFns fns)
      : host_(host), config_(config), fns_(fns) {
    // A bad configuration does not stop the module from loading: every request answers with
    // the problem instead, so the user sees it where they use the provider.
    try {
      parsed_ = parse_module_config(config_, fns_.defaults());
    } catch (const std::exception& e) {
      config_error_ = e.what();
      host_.log(KEEL_LOG_WARN, std::string("invalid provider configuration: ") + e.what());
    }
  }

  void handle(keel::sdk::Call call) override {
    boost::json::object request;
    if (!call.payload().empty()) {
      boost::system::error_code ec;
      auto v = boost::json::parse(call.payload(), ec);
      if (ec || !v.is_object()) {
        reply(call, error_reply(ProviderError("bad_request", "the request payload is not a JSON object")));
        return;
      }
      request = std::move(v.get_object());
    }

    Reply r = guarded([&]() -> Reply {
      ProviderConfig config = effective_config(request);
      auto cancelled = [call] { return call.cancelled(); };
      if (call.method() == "stream") {
        EmitFn emit = [&call](const boost::json::object& ev) { call.emit(boost::json::serialize(ev)); };
        return fns_.stream(config, request, emit, cancelled);
      }
      if (call.method() == "models" && fns_.models) return fns_.models(config, cancelled);
      ProviderError e("bad_request", "unknown method '" + std::string(call.method()) + "' (this provider handles " +
                                         (fns_.models ? "stream and models)" : "stream)"));
      Reply nf = error_reply(e);
      nf.status = KEEL_ERR_NOT_FOUND;
      return nf;
    });
    reply(call, r);
  }

 private:
  ProviderConfig effective_config(const boost::json::object& request) const {
    if (auto* p = request.if_contains("provider"); p && p->is_object()) {
      ProviderConfig c = parse_provider_entry(p->get_object(), fns_.defaults());
      c.model = parsed_ ? parsed_->model : std::string();
      return c;
    }
    if (!parsed_) throw ConfigError(config_error_);
    return *parsed_;
  }

  static void reply(const keel::sdk::Call& call, const Reply& r) { call.reply(r.status, r.json()); }

  keel::sdk::Host& host_;
  boost::json::object config_;
  ProviderFns fns_;
  std::optional<ProviderConfig> parsed_;
  std::string config_error_;
};

}  // namespace keel::providers
