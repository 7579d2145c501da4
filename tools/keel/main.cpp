#include "cli_args.hpp"
#include "commands.hpp"
#include "manage_exec.hpp"
#include "models_command.hpp"

#include <keel/kernel/config.hpp>

#include <unistd.h>

#include <iostream>
#include <string_view>

int main(int argc, char** argv) {
  using namespace keel::cli;
  // `keel plugin ...` and `keel trust ...` have their own arguments and run in keel-manage
  // (manage_main.cpp), which links libarchive and Poco so that this executable does not.
  if (argc > 1 && (std::string_view(argv[1]) == "plugin" || std::string_view(argv[1]) == "trust"))
    return exec_manage(argv);
  try {
    Options o = parse(argc, argv);
    // Plain `keel` (options only) at a terminal is a conversation; elsewhere it shows the usage.
    if (o.command.empty()) o.command = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) ? "chat" : "help";
    if (o.command == "exec") return run_exec(o);
    if (o.command == "modules") return run_modules(o);
    if (o.command == "fork") return run_fork(o);
    if (o.command == "models") return run_models(o);
    if (o.command == "sessions") return run_sessions(o);
    if (o.command == "execpolicy") return run_execpolicy(o);
    if (o.command == "chat") return run_chat(o);
    if (o.command == "resume") return run_resume(o);
    if (o.command == "version") {
      std::cout << "keel " << KEEL_VERSION << "\n";
      return 0;
    }
    if (o.command == "help") {
      std::cout << usage();
      return 0;
    }
    std::cerr << "keel: unknown command '" << o.command << "'\n" << usage();
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
