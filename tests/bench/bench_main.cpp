#include "bench.hpp"

#include <cstring>

int main(int argc, char** argv) {
  std::printf("| %-58s | %10s | %-5s | %-10s |\n", "benchmark", "median", "unit", "target");
  std::printf("|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(12, '-').c_str(), std::string(7, '-').c_str(),
              std::string(12, '-').c_str());
  bool all = argc < 2;
  for (int i = 1; i < argc || all; ++i) {
    const char* which = all ? "" : argv[i];
    if (all || !std::strcmp(which, "startup")) keel::bench::startup();
    if (all || !std::strcmp(which, "bus")) keel::bench::bus();
    if (all) break;
  }
}
