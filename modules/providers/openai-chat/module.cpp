// openai-chat: Chat Completions (Ollama, llama.cpp server, vLLM, LM Studio, OpenRouter, ...)
// as a keel provider module. Configuration: see modules/providers/common/README.md.
#include <keel/providers/module_support.hpp>
#include <keel/providers/openai_chat.hpp>

namespace {

namespace api = keel::providers::openai_chat;

class OpenAIChat : public keel::providers::ProviderModule {
 public:
  OpenAIChat(keel::sdk::Host& host, const boost::json::object& config)
      : ProviderModule(host, config, {&api::defaults, &api::stream, &api::models}) {}
};

const keel_capability kCapabilities[] = {
    {KEEL_CAP_PROVIDER, 0, "openai-chat",
     "Chat Completions API (streaming): Ollama, llama.cpp server, vLLM, LM Studio, OpenRouter and others", nullptr},
};

}  // namespace

KEEL_MODULE(OpenAIChat, "openai-chat", "0.1.0",
            "Model provider for the Chat Completions API spoken by most local and hosted servers", kCapabilities)
