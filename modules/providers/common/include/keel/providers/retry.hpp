// Retry timing: exponential backoff with jitter, and the delays servers ask for.
#pragma once

#include <keel/common/http_client.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace keel::providers {

// base * 2^(retry-1), capped at max, then jittered by ±10%. retry counts from 1.
std::int64_t backoff_delay_ms(int retry, std::int64_t base_ms, std::int64_t max_ms);

// `retry-after-ms` (milliseconds) or `Retry-After` (seconds, fractional seconds, or an
// HTTP date) from a response.
std::optional<std::int64_t> retry_after_from_headers(const common::HttpResponse& response);

// "Please try again in 1.5s." / "try again in 20ms" / "try again in 6m0s" / "try again in
// 2 seconds" → milliseconds (rounded up).
std::optional<std::int64_t> retry_after_from_message(std::string_view message);

// Sleeps `ms`, polling cancelled() every 20 ms; false when cancelled.
bool sleep_unless_cancelled(std::int64_t ms, const std::function<bool()>& cancelled);

}  // namespace keel::providers
