// A tiny benchmark harness: each benchmark prints rows of "name | value | unit | target".
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

// Median of `runs` timings of fn, in milliseconds.
inline double median_ms(int runs, const std::function<void()>& fn) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

void startup();
void bus();

}  // namespace keel::bench
