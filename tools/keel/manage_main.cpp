// keel-manage — `keel plugin ...` and `keel trust ...`: marketplaces, plugins and publishers'
// keys. keel runs it (execv, the same argv) from beside its own executable, so that `keel
// exec` never loads what only these commands need: libarchive (with libxml2, ICU, nettle,
// lzma, zstd...) to unpack packages, and Poco/OpenSSL to fetch marketplaces over HTTPS.
// Its output and exit codes are those of `keel plugin` and `keel trust`.
#include "plugin_commands.hpp"
#include "trust_commands.hpp"

#include <exception>
#include <iostream>
#include <string_view>

int main(int argc, char** argv) {
  using namespace keel::cli;
  try {
    if (argc > 1 && std::string_view(argv[1]) == "plugin") return run_plugin(argc - 2, argv + 2);
    if (argc > 1 && std::string_view(argv[1]) == "trust") return run_trust(argc - 2, argv + 2);
  } catch (const std::exception& e) {
    std::cerr << "keel: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: keel plugin COMMAND ...   marketplaces and plugins (keel plugin --help)\n"
               "       keel trust add|list|remove ...   publishers' keys (keel trust --help)\n"
               "(keel-manage is run by keel for these commands)\n";
  return 2;
}
