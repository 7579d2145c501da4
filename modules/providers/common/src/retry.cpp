#include <keel/providers/retry.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <random>
#include <string>
#include <thread>

namespace keel::providers {

std::int64_t backoff_delay_ms(int retry, std::int64_t base_ms, std::int64_t max_ms) {
  if (retry < 1) retry = 1;
  double d = static_cast<double>(base_ms) * std::pow(2.0, std::min(retry - 1, 30));
  d = std::min(d, static_cast<double>(max_ms));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  return static_cast<std::int64_t>(std::llround(d * jitter(rng)));
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A non-negative decimal number at the start of s; advances s past it.
std::optional<double> take_number(std::string_view& s) {
  std::size_t i = 0;
  bool digits = false, dot = false;
  while (i < s.size()) {
    char c = s[i];
    if (c >= '0' && c <= '9') digits = true;
    else if (c == '.' && !dot) dot = true;
    else break;
    ++i;
  }
  if (!digits) return std::nullopt;
  double v = std::strtod(std::string(s.substr(0, i)).c_str(), nullptr);
  s.remove_prefix(i);
  return v;
}

bool take_word(std::string_view& s, std::string_view w) {
  if (s.size() < w.size()) return false;
  for (std::size_t i = 0; i < w.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != w[i]) return false;
  // A unit must not run on into a longer word ("s" vs "sec" is handled by the caller's order).
  if (s.size() > w.size() && std::isalpha(static_cast<unsigned char>(s[w.size()]))) return false;
  s.remove_prefix(w.size());
  return true;
}

std::int64_t ceil_ms(double ms) { return static_cast<std::int64_t>(std::ceil(ms - 1e-9)); }

}  // namespace

std::optional<std::int64_t> retry_after_from_headers(const common::HttpResponse& response) {
  if (auto ms = response.header("retry-after-ms")) {
    std::string_view s = trim(*ms);
    if (auto v = take_number(s); v && trim(s).empty()) return ceil_ms(*v);
  }
  if (auto ra = response.header("retry-after")) {
    std::string_view s = trim(*ra);
    std::string_view rest = s;
    if (auto v = take_number(rest); v && trim(rest).empty()) return ceil_ms(*v * 1000.0);
    // HTTP date: "Wed, 21 Oct 2015 07:28:00 GMT"
    std::tm tm{};
    std::string text(s);
    if (const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm); end) {
      std::time_t when = timegm(&tm);
      std::time_t now = std::time(nullptr);
      return std::max<std::int64_t>(0, static_cast<std::int64_t>(when - now) * 1000);
    }
  }
  return std::nullopt;
}

std::optional<std::int64_t> retry_after_from_message(std::string_view message) {
  static constexpr std::string_view needle = "try again in";
  auto it = std::search(message.begin(), message.end(), needle.begin(), needle.end(),
                        [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
  if (it == message.end()) return std::nullopt;
  std::string_view s = message.substr(static_cast<std::size_t>(it - message.begin()) + needle.size());
  double total_ms = 0;
  bool any = false;
  for (;;) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    auto v = take_number(s);
    if (!v) break;
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    double unit;
    if (take_word(s, "ms") || take_word(s, "milliseconds") || take_word(s, "millisecond")) unit = 1;
    else if (take_word(s, "s") || take_word(s, "sec") || take_word(s, "secs") || take_word(s, "seconds") ||
             take_word(s, "second"))
      unit = 1000;
    else if (take_word(s, "m") || take_word(s, "min") || take_word(s, "mins") || take_word(s, "minutes") ||
             take_word(s, "minute"))
      unit = 60'000;
    else if (take_word(s, "h") || take_word(s, "hours") || take_word(s, "hour"))
      unit = 3'600'000;
    else if (!any)
      unit = 1000;  // a bare number means seconds
    else
      break;
    total_ms += *v * unit;
    any = true;
  }
  if (!any) return std::nullopt;
  return ceil_ms(total_ms);
}

bool sleep_unless_cancelled(std::int64_t ms, const std::function<bool()>& cancelled) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    if (cancelled && cancelled()) return false;
    auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(20)));
  }
}

}  // namespace keel::providers
