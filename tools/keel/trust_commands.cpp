#include "trust_commands.hpp"

#include <keel/kernel/config.hpp>
#include <keel/market/plugins.hpp>

#include <iostream>
#include <string>
#include <vector>

namespace keel::cli {

const char* trust_usage() {
  return "usage: keel trust add FILE.pub [--name NAME]   trust a publisher's minisign public key\n"
         "       keel trust list                        the keys whose signatures keel accepts\n"
         "       keel trust remove ID|NAME              stop trusting a key\n"
         "Keys live in $KEEL_HOME/trusted_keys; only you add them, never an index or a package.\n";
}

int run_trust(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::string name;
  std::vector<std::string> pos;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--name") {
      if (i + 1 >= args.size()) {
        std::cerr << "keel trust: --name needs a value\n";
        return 2;
      }
      name = args[++i];
    } else if (args[i] == "-h" || args[i] == "--help") {
      std::cout << trust_usage();
      return 0;
    } else {
      pos.push_back(args[i]);
    }
  }
  if (pos.empty()) {
    std::cerr << trust_usage();
    return 2;
  }
  market::TrustStore store(market::StoreLayout{default_keel_home()}.trusted_keys());
  const std::string& cmd = pos[0];
  try {
    if (cmd == "add" && pos.size() == 2) {
      auto before = store.list();
      auto k = store.add(pos[1], name);
      bool existed = false;
      for (auto& b : before) existed = existed || b.id == k.id;
      if (existed)
        std::cout << "key " << k.id << " is already trusted (" << k.file.string() << ")\n";
      else
        std::cout << "trusted key " << k.id << " as '" << k.name << "' (" << k.file.string() << ")\n";
      return 0;
    }
    if (cmd == "list" && pos.size() == 1) {
      std::vector<std::string> warnings;
      auto keys = store.list(&warnings);
      for (auto& w : warnings) std::cerr << "keel trust: warning: " << w << "\n";
      if (keys.empty()) std::cout << "no trusted keys (add one with `keel trust add FILE.pub`)\n";
      for (auto& k : keys) std::cout << k.id << "  " << k.name << "  " << k.file.string() << "\n";
      return 0;
    }
    if (cmd == "remove" && pos.size() == 2) {
      auto k = store.remove(pos[1]);
      std::cout << "no longer trusting key " << k.id << " ('" << k.name << "'); modules and indexes it signed will be "
                                                                         "refused\n";
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "keel trust " << cmd << ": " << e.what() << "\n";
    return 1;
  }
  std::cerr << trust_usage();
  return 2;
}

}  // namespace keel::cli
