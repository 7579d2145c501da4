// A tiny benchmark harness: each benchmark prints rows of "name | value | unit | target".
// Standard library only: keel-memory-bench and keel-bench-marketplace include it too.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace keel::bench {

struct Row {
  std::string name;
  double value;
  std::string unit, target;
};

inline void print(const Row& r) {
  std::printf("| %-58s | %10.3f | %-5s | %-10s |\n", r.name.c_str(), r.value, r.unit.c_str(), r.target.c_str());
  std::fflush(stdout);
}

// A note under the table's rows (why a row is missing, what a number includes).
inline void note(const std::string& text) {
  std::printf("| %-58s | %10s | %-5s | %-10s |\n", ("note: " + text).c_str(), "-", "", "");
  std::fflush(stdout);
}

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Stats {
  double median = 0, p99 = 0, min = 0, max = 0, mean = 0;
  std::size_t n = 0;
};

inline Stats stats(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = v.size();
  s.median = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

// Each of `runs` timings of fn, in milliseconds.
inline std::vector<double> timings_ms(int runs, const std::function<void()>& fn) {
  std::vector<double> t;
  t.reserve(static_cast<std::size_t>(runs));
  for (int i = 0; i < runs; ++i) {
    auto a = Clock::now();
    fn();
    t.push_back(ms_since(a));
  }
  return t;
}

// Median of `runs` timings of fn, in milliseconds.
inline double median_ms(int runs, const std::function<void()>& fn) { return stats(timings_ms(runs, fn)).median; }

// The benchmark groups of keel-bench (bench_main.cpp selects them by name).
void startup();
void bus();
void dispatch();
void harness();
void sandbox();
void marketplace();  // bench_marketplace.cpp, when it is built in

}  // namespace keel::bench
