// Recognises `bash -lc "<script>"` and friends.
#include <array>

#include "keel/policy/shell_parse.hpp"

namespace keel::policy {

std::optional<std::string> shell_wrapper_script(const std::vector<std::string>& argv) {
  static constexpr std::array<std::string_view, 9> kShells = {
      "bash", "sh", "zsh", "/bin/bash", "/usr/bin/bash", "/bin/sh", "/usr/bin/sh",
      "/bin/zsh", "/usr/bin/zsh"};
  if (argv.size() != 3) return std::nullopt;
  bool shell = false;
  for (auto s : kShells) shell = shell || argv[0] == s;
  if (!shell) return std::nullopt;
  if (argv[1] != "-c" && argv[1] != "-lc") return std::nullopt;
  return argv[2];
}

}  // namespace keel::policy
