// e2e-keel-models: `keel models` (tools/keel/models_command.cpp) behind the launcher's own
// argument parser and error handling, so it is tested end to end whether or not main.cpp
// dispatches it yet:  e2e-keel-models models [--provider NAME] [--json] [refresh]
#include "cli_args.hpp"
#include "models_command.hpp"

#include <keel/kernel/config.hpp>

#include <iostream>

int main(int argc, char** argv) {
  using namespace keel::cli;
  try {
    Options o = parse(argc, argv);
    if (o.command == "models") return run_models(o);
    std::cerr << "e2e-keel-models: only the models command is handled here\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "keel: " << e.what() << "\n";
    return 2;
  } catch (const keel::ConfigError& e) {
    std::cerr << "keel: configuration error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "keel: " << e.what() << "\n";
    return 1;
  }
}
