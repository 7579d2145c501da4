// Reading /proc in tests that watch processes come and go. Read with read(2), never with
// iostreams: a process may exit between open and read, the read then fails with ESRCH, and
// libstdc++'s streams turn that into an exception in the middle of a scan.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <sstream>
#include <string>

namespace keel::test {

// The whole file, or "" when it (or its process) is gone.
inline std::string read_proc_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n < 0) out.clear();  // gone mid-read: as if it had never been there
      break;
    }
  }
  ::close(fd);
  return out;
}

struct ProcStat {
  char state = 0;  // R, S, D, Z, X, ...
  long ppid = 0, pgrp = 0, session = 0;
};

// From /proc/<pid>/stat; nullopt when the process is gone.
inline std::optional<ProcStat> proc_stat(pid_t pid) {
  std::string stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos || close + 2 >= stat.size()) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  ProcStat s;
  fields >> s.state >> s.ppid >> s.pgrp >> s.session;
  if (!fields) return std::nullopt;
  return s;
}

// Alive and not a zombie (in a container whose PID 1 does not reap, killed orphans stay zombies).
inline bool pid_alive(pid_t pid) {
  auto s = proc_stat(pid);
  return s && s->state != 'Z' && s->state != 'X';
}

}  // namespace keel::test
