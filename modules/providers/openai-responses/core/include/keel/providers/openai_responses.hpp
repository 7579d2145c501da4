// OpenAI Responses API (POST {base_url}/responses, stream: true): request building and the
// event stream → deltas, items, usage. module.cpp only adapts this to the ABI.
#pragma once

#include <keel/providers/config.hpp>
#include <keel/providers/stream.hpp>

#include <boost/json/object.hpp>

#include <memory>

namespace keel::providers::openai_responses {

// name "OpenAI", base_url "https://api.openai.com/v1", wire_api "responses".
ProviderDefaults defaults();

// The request body for a `stream` request (docs/protocols.md). store:false, stream:true,
// tool_choice:"auto"; item ids are dropped (nothing is stored server-side) and reasoning
// items are resent only when they carry encrypted_content; reasoning_effort becomes
// reasoning:{effort, summary:"auto"} with include:["reasoning.encrypted_content"];
// session_id becomes prompt_cache_key.
boost::json::object build_request(const boost::json::object& request, const ProviderConfig& config);

// Decoder for one attempt's event stream.
std::unique_ptr<StreamDecoder> make_decoder(const EmitFn& emit, std::string provider_label);

// The whole `stream` method: build, send, retry, reply.
Reply stream(const ProviderConfig& config, const boost::json::object& request, const EmitFn& emit,
             const CancelFn& cancelled);

// Method `models`: GET {base_url}/models.
Reply models(const ProviderConfig& config, const CancelFn& cancelled);

}  // namespace keel::providers::openai_responses
