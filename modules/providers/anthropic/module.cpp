// anthropic: the Anthropic Messages API as a keel provider module.
// Configuration: see modules/providers/common/README.md (max_tokens, anthropic_version too).
#include <keel/providers/anthropic.hpp>
#include <keel/providers/module_support.hpp>

namespace {

namespace api = keel::providers::anthropic;

class Anthropic : public keel::providers::ProviderModule {
 public:
  Anthropic(keel::sdk::Host& host, const boost::json::object& config)
      : ProviderModule(host, config, {&api::defaults, &api::stream, &api::models}) {}
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_PROVIDER, 0, "anthropic",
     "Anthropic Messages API (streaming): text, thinking, tool use, usage with cache reads", nullptr},
};

}  // namespace

KEEL_MODULE(Anthropic, "anthropic", "0.1.0", "Model provider for Anthropic's Messages API", kCapabilities)
