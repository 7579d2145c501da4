// Ctrl-C, SIGTERM and SIGHUP while keel runs a front end (`keel exec`, `keel fork`).
//
// SIGINT, SIGTERM and SIGHUP are blocked in the thread that constructs the watch, and so in
// every thread started after it (the kernel's, the modules'); a dedicated thread receives them
// through a signalfd. No work is ever done in an asynchronous signal handler. (Processes the
// modules spawn start with an empty signal mask and default dispositions: the process runner
// and unified-exec spawn with POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF.)
//
//  - SIGINT is first offered to the front end (Hooks::offer_interrupt): an interactive one
//    stops its turn and stays. Otherwise, and for SIGTERM and SIGHUP, keel shuts down:
//  - the first such signal is recorded (received()) and Hooks::shut_down runs, which
//    interrupts the turns so that the front end returns and keel exits in order;
//  - a second SIGINT or SIGTERM (not SIGHUP, which a closing terminal sends twice), or a
//    shutdown still unfinished after kShutdownLimit, means "stop now":
//    keel's child processes are killed (each with its process group when it leads one:
//    commands run in sessions of their own) and keel exits at once with 128 + the signal.
// Hooks run on helper threads, so the watch thread stays free for the next signal.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace keel::cli {

class SignalWatch {
 public:
  static constexpr std::chrono::seconds kShutdownLimit{5};
  static constexpr std::chrono::seconds kOfferLimit{2};  // a front end answering later: not handled

  struct Hooks {
    std::function<bool()> offer_interrupt;  // true: the front end handled the Ctrl-C
    std::function<void(int signo)> shut_down;
  };

  // Construct it before any other thread is started.
  SignalWatch();
  ~SignalWatch();  // stops the watch thread; the signals stay blocked (the process is ending)
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  // Runs shut_down at once if a shutdown signal came before.
  void set_hooks(Hooks hooks);
  // Waits for hooks that are running; signals after this only count (and a second one, or
  // the time limit, still ends keel).
  void clear_hooks();
  // The signal that began the shutdown, or 0.
  int received() const { return first_.load(); }

 private:
  void run();
  bool offer();                     // SIGINT to the front end; on the watch thread
  void start_shut_down(int signo);  // with mu_ held

  int signal_fd_ = -1, stop_fd_ = -1;
  std::atomic<int> first_{0};
  std::mutex mu_;  // guards hooks_, shut_down_started_ and helpers_
  Hooks hooks_;
  bool shut_down_started_ = false;
  std::vector<std::thread> helpers_;  // running hooks
  std::thread thread_;                // receives the signals
};

// Sends SIGKILL to every child of this process, to its whole process group when the child
// leads a group other than keel's own.
void kill_children();

}  // namespace keel::cli
