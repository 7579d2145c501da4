// Runs only the marketplace benchmarks (tests/bench/bench_marketplace.cpp).
#include "bench.hpp"

namespace keel::bench {
void marketplace();
}

int main() {
  std::printf("| %-58s | %10s | %-5s | %-10s |\n", "benchmark", "median", "unit", "target");
  keel::bench::marketplace();
}
