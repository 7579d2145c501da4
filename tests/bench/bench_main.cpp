// keel-bench [GROUP...]: runs the named benchmark groups (default: all) and prints one table.
//   keel-bench --list    prints the group names
#include "bench.hpp"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

using Group = std::pair<const char*, void (*)()>;

std::vector<Group> groups() {
  std::vector<Group> g{
      {"startup", keel::bench::startup}, {"bus", keel::bench::bus},         {"dispatch", keel::bench::dispatch},
      {"harness", keel::bench::harness}, {"sandbox", keel::bench::sandbox},
  };
#ifdef KEEL_BENCH_MARKETPLACE
  g.push_back({"marketplace", keel::bench::marketplace});
#endif
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  auto all = groups();
  std::vector<Group> selected;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--list")) {
      for (auto& [name, fn] : all) std::printf("%s\n", name);
      return 0;
    }
    bool found = false;
    for (auto& g : all)
      if (!std::strcmp(argv[i], g.first)) selected.push_back(g), found = true;
    if (!found) {
      std::fprintf(stderr, "keel-bench: no benchmark group '%s'; groups:", argv[i]);
      for (auto& [name, fn] : all) std::fprintf(stderr, " %s", name);
      std::fprintf(stderr, "\n");
      return 2;
    }
  }
  if (selected.empty()) selected = all;
  std::printf("| %-58s | %10s | %-5s | %-10s |\n", "benchmark", "median", "unit", "target");
  std::printf("|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(12, '-').c_str(), std::string(7, '-').c_str(),
              std::string(12, '-').c_str());
  for (auto& [name, fn] : selected) fn();
  return 0;
}
