// openai-responses: the OpenAI Responses API as a keel provider module.
// Configuration: see modules/providers/common/README.md.
#include <keel/providers/module_support.hpp>
#include <keel/providers/openai_responses.hpp>

namespace {

namespace api = keel::providers::openai_responses;

class OpenAIResponses : public keel::providers::ProviderModule {
 public:
  OpenAIResponses(keel::sdk::Host& host, const boost::json::object& config)
      : ProviderModule(host, config, {&api::defaults, &api::stream, &api::models}) {}
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_PROVIDER, 0, "openai-responses",
     "OpenAI Responses API (streaming): text, reasoning summaries, function and freeform tool calls", nullptr},
};

}  // namespace

KEEL_MODULE(OpenAIResponses, "openai-responses", "0.1.0",
            "Model provider for the OpenAI Responses API (what Codex uses)", kCapabilities)
