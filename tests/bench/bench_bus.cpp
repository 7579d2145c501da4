// The bus: publish → delivery latency and request/reply dispatch overhead.
#include "bench.hpp"

#include <keel/abi.h>
#include <keel/kernel/bus.hpp>

#include <atomic>
#include <future>

namespace keel::bench {

void bus() {
  Bus b;
  std::atomic<int> got{0};
  b.subscribe("event", [&](const Event&) { ++got; });
  const int n = 100000;
  double publish = median_ms(5, [&] {
    got = 0;
    for (int i = 0; i < n; ++i) b.publish("event", boost::json::object{{"type", "x"}, {"session_id", "s"}});
    b.drain();
  });
  print({"bus: publish + deliver one event (1 subscriber)", publish * 1000.0 / n, "us", ""});

  b.serve("echo", [](const RequestPtr& r) { r->reply(KEEL_OK, r->payload()); });
  const int m = 100000;
  double rr = median_ms(5, [&] {
    for (int i = 0; i < m; ++i) b.request("echo.call", "{}", nullptr, [](int, std::string_view) {});
  });
  print({"bus: request/reply round trip (in-process server)", rr * 1000.0 / m, "us", ""});
}

}  // namespace keel::bench
