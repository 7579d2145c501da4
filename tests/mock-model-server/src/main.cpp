// keel-mock-model-server: the mock model server as a process, for scripts.
//
//   keel-mock-model-server [--port N] [--script FILE.jsonl] [--api-key KEY]
//                          [--record FILE.jsonl] [--model NAME]
//
// Prints the port it listens on (127.0.0.1) as the first line of stdout, then serves until
// SIGINT/SIGTERM. More script lines can be POSTed to /__mock/script; GET /__mock/requests
// returns what was received. See README.md.
#include <keel/testing/mock_model_server.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <pthread.h>
#include <string>

int main(int argc, char** argv) {
  keel::testing::MockModelServer::Options options;
  std::string script;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "keel-mock-model-server: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port") options.port = static_cast<std::uint16_t>(std::stoi(value()));
    else if (a == "--script") script = value();
    else if (a == "--api-key") options.api_key = value();
    else if (a == "--record") options.record_path = value();
    else if (a == "--model") options.model = value();
    else if (a == "-h" || a == "--help") {
      std::puts("usage: keel-mock-model-server [--port N] [--script FILE.jsonl] [--api-key KEY] [--record FILE.jsonl] "
                "[--model NAME]");
      return 0;
    } else {
      std::fprintf(stderr, "keel-mock-model-server: unknown argument %s\n", a.c_str());
      return 2;
    }
  }

  // Block the stop signals before any thread starts, then wait for them here.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    keel::testing::MockModelServer server(options);
    if (!script.empty()) server.load_script_file(script);
    std::cout << server.port() << std::endl;
    int sig = 0;
    sigwait(&stop, &sig);
    server.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "keel-mock-model-server: %s\n", e.what());
    return 1;
  }
  return 0;
}
