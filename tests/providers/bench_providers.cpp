// Provider benchmarks: SSE parse throughput and the per-request overhead a provider adds on
// loopback (mock server, tiny response). Prints one line per measurement.
//
//   keel-bench-providers [--requests N] [--mb M]
#include <keel/common/sse.hpp>
#include <keel/providers/openai_chat.hpp>
#include <keel/providers/openai_responses.hpp>
#include <keel/testing/mock_model_server.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void bench_sse(std::size_t megabytes) {
  // A realistic Responses stream: many small delta events.
  std::string event =
      "event: response.output_text.delta\n"
      "data: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_0123456789\",\"output_index\":0,"
      "\"content_index\":0,\"delta\":\"Hello, world \",\"sequence_number\":42}\n\n";
  std::string stream;
  while (stream.size() < megabytes * 1024 * 1024) stream += event;
  std::size_t events = 0;
  keel::common::SseParser parser([&](const keel::common::SseEvent&) { ++events; });
  for (std::size_t chunk : {std::size_t(512), std::size_t(4096), std::size_t(16384)}) {
    events = 0;
    parser.reset();
    auto t = Clock::now();
    for (std::size_t i = 0; i < stream.size(); i += chunk)
      parser.feed(std::string_view(stream).substr(i, chunk));
    double s = seconds_since(t);
    std::printf("sse_parse chunk=%zu: %.0f MB/s (%zu events, %.1f M events/s)\n", chunk,
                static_cast<double>(stream.size()) / (1024.0 * 1024.0) / s, events,
                static_cast<double>(events) / s / 1e6);
  }
}

template <class Fn>
void bench_requests(const char* name, int n, Fn&& fn) {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    auto t = Clock::now();
    fn();
    ms.push_back(seconds_since(t) * 1000.0);
  }
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double v : ms) sum += v;
  std::printf("%s: n=%d mean=%.3f ms p50=%.3f ms p99=%.3f ms\n", name, n, sum / n, ms[ms.size() / 2],
              ms[std::min(ms.size() - 1, ms.size() * 99 / 100)]);
}

}  // namespace

int main(int argc, char** argv) {
  int requests = 200;
  std::size_t mb = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--requests") requests = std::atoi(argv[i + 1]);
    else if (a == "--mb") mb = static_cast<std::size_t>(std::atoi(argv[i + 1]));
  }
  bench_sse(mb);

  keel::testing::MockModelServer server;
  keel::providers::ProviderConfig config;
  config.base_url = server.url() + "/v1";
  config.model = "mock-model";
  auto request = boost::json::parse(
                     R"({"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}]})")
                     .as_object();
  keel::providers::EmitFn emit = [](const boost::json::object&) {};
  for (int i = 0; i < requests * 2 + 20; ++i) server.add_script(R"({"text": "ok"})");
  auto one = [&](auto stream) {
    auto r = stream(config, request, emit, {});
    if (!r.ok()) {
      std::fprintf(stderr, "request failed: %s\n", r.json().c_str());
      std::exit(1);
    }
  };
  for (int i = 0; i < 10; ++i) one(keel::providers::openai_responses::stream);  // warm up
  bench_requests("request_roundtrip responses (loopback, tiny response)", requests,
                 [&] { one(keel::providers::openai_responses::stream); });
  bench_requests("request_roundtrip chat (loopback, tiny response)", requests,
                 [&] { one(keel::providers::openai_chat::stream); });
  return 0;
}
