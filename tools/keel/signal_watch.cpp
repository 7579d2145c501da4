#include "signal_watch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace keel::cli {

namespace {

sigset_t watched_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

SignalWatch::SignalWatch() {
  sigset_t set = watched_signals();
  if (int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr); rc != 0)
    throw std::runtime_error(std::string("cannot block signals: ") + std::strerror(rc));
  signal_fd_ = ::signalfd(-1, &set, SFD_CLOEXEC);
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (signal_fd_ < 0 || stop_fd_ < 0) {
    int e = errno;
    if (signal_fd_ >= 0) ::close(signal_fd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    throw std::runtime_error(std::string("cannot watch signals: ") + std::strerror(e));
  }
  thread_ = std::thread([this] { run(); });
}

SignalWatch::~SignalWatch() {
  std::uint64_t one = 1;
  while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  clear_hooks();
  ::close(signal_fd_);
  ::close(stop_fd_);
}

void SignalWatch::set_hooks(Hooks hooks) {
  std::lock_guard lock(mu_);
  hooks_ = std::move(hooks);
  if (int signo = first_.load(); signo != 0) start_shut_down(signo);
}

void SignalWatch::clear_hooks() {
  std::vector<std::thread> running;
  {
    std::lock_guard lock(mu_);
    hooks_ = {};
    running.swap(helpers_);
  }
  for (auto& t : running) t.join();
}

void SignalWatch::start_shut_down(int signo) {
  if (shut_down_started_ || !hooks_.shut_down) return;
  shut_down_started_ = true;
  helpers_.emplace_back([f = hooks_.shut_down, signo] {
    try {
      f(signo);
    } catch (...) {  // the time limit still ends keel
    }
  });
}

bool SignalWatch::offer() {
  auto answer = std::make_shared<std::promise<bool>>();
  auto handled = answer->get_future();
  std::thread helper;
  {
    std::lock_guard lock(mu_);
    if (!hooks_.offer_interrupt) return false;
    helper = std::thread([f = hooks_.offer_interrupt, answer] {
      bool h = false;
      try {
        h = f();
      } catch (...) {
      }
      answer->set_value(h);
    });
  }
  bool answered = handled.wait_for(kOfferLimit) == std::future_status::ready;
  if (answered) {
    helper.join();  // done: a long chat's many Ctrl-Cs leave no threads behind
    return handled.get();
  }
  std::lock_guard lock(mu_);
  helpers_.push_back(std::move(helper));  // still running: joined by clear_hooks()
  return false;
}

void SignalWatch::run() {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> deadline;  // of the shutdown
  pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
  for (;;) {
    int timeout = -1;
    if (deadline)
      timeout = static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count()));
    int ready = ::poll(fds, 2, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (ready == 0) {  // the orderly shutdown is taking too long
      kill_children();
      ::_exit(128 + first_.load());
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    signalfd_siginfo info{};
    if (::read(signal_fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
    const int signo = static_cast<int>(info.ssi_signo);
    if (first_.load() != 0) {
      // A closing terminal sends SIGHUP twice (from the shell, then from the kernel), and
      // service managers follow SIGTERM with SIGHUP: neither means "hurry". A second Ctrl-C
      // or SIGTERM does: stop now.
      if (signo == SIGHUP) continue;
      kill_children();
      ::_exit(128 + signo);
    }
    if (signo == SIGINT && offer()) continue;  // an interactive front end took the Ctrl-C
    first_ = signo;
    deadline = Clock::now() + kShutdownLimit;
    std::lock_guard lock(mu_);
    start_shut_down(signo);
  }
}

void kill_children() {
  const pid_t self = ::getpid();
  const pid_t own_group = ::getpgrp();
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  while (dirent* e = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == self) continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[512];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    // "pid (comm) state ppid pgrp ...": comm may hold anything, so parse after the last ')'.
    const char* rest = std::strrchr(buf, ')');
    char state = 0;
    long ppid = 0, pgrp = 0;
    if (!rest || std::sscanf(rest + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3 || ppid != self) continue;
    if (pgrp == pid && pgrp != own_group) ::kill(-static_cast<pid_t>(pid), SIGKILL);
    ::kill(static_cast<pid_t>(pid), SIGKILL);
  }
  ::closedir(proc);
}

}  // namespace keel::cli
