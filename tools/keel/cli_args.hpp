// Command-line parsing for the launcher (no agent logic here).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string command;  // exec, modules, help, version
  std::vector<std::string> overrides;  // -c key=value
  std::optional<std::string> profile, model, provider, cwd, output_last_message, replay, ui;
  std::optional<std::string> sandbox_mode, approval_policy, rules_file;
  bool json = false;
  bool last = false;  // resume --last
  std::vector<std::string> positional;
};

Options parse(int argc, char** argv);
const char* usage();

}  // namespace keel::cli
