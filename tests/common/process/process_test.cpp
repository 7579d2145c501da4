#include <keel/common/process.hpp>

#include "proc_files.hpp"
#include "temp_dir.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace keel::common;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using keel::test::TempDir;

namespace {

ProcessOptions cmd(std::vector<std::string> argv) {
  ProcessOptions o;
  o.argv = std::move(argv);
  o.timeout = 20s;
  return o;
}

ProcessOptions sh(std::string script) { return cmd({"sh", "-c", std::move(script)}); }

// Members of process group `pgid` that are still alive. Zombies do not count: in a container
// whose PID 1 does not reap orphans, killed grandchildren stay zombies forever, and
// kill(-pgid, 0) keeps succeeding for them.
std::vector<pid_t> live_group_members(pid_t pgid) {
  std::vector<pid_t> live;
  if (::kill(-pgid, 0) != 0 && errno == ESRCH) return live;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    auto stat = keel::test::proc_stat(pid);  // read(2): a process may vanish mid-scan
    if (stat && stat->pgrp == pgid && stat->state != 'Z' && stat->state != 'X') live.push_back(pid);
  }
  return live;
}

// Waits a little for signalled processes to finish dying.
bool group_dies(pid_t pgid, std::chrono::milliseconds within = 2s) {
  auto until = std::chrono::steady_clock::now() + within;
  while (!live_group_members(pgid).empty()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

bool pid_alive(pid_t pid) { return keel::test::pid_alive(pid); }

}  // namespace

TEST_CASE("exit codes", "[process]") {
  auto r = run_process(cmd({"true"}));
  CHECK(r.spawned);
  CHECK(r.exit_code == 0);
  CHECK(r.error.empty());
  CHECK_FALSE(r.timed_out);
  CHECK_FALSE(r.cancelled);
  CHECK(run_process(cmd({"false"})).exit_code == 1);
  CHECK(run_process(sh("exit 42")).exit_code == 42);

  auto killed = run_process(sh("kill -9 $$"));
  CHECK(killed.exit_code == 128 + 9);
  CHECK(killed.term_signal == 9);
  CHECK(run_process(sh("kill -TERM $$")).exit_code == 128 + SIGTERM);
}

TEST_CASE("stdout and stderr are captured separately and interleaved", "[process]") {
  auto r = run_process(sh("echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2; sleep 0.05; echo err2 >&2"));
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_text() == "out1\nout2\n");
  CHECK(r.stderr_text() == "err1\nerr2\n");
  CHECK(r.output() == "out1\nerr1\nout2\nerr2\n");
}

TEST_CASE("runs in the given working directory", "[process]") {
  TempDir dir{"keel-process-test"};
  auto o = cmd({"pwd", "-P"});
  o.cwd = dir.path().string();
  auto r = run_process(o);
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_text() == fs::canonical(dir.path()).string() + "\n");

  // A program given by a relative path is found relative to that directory.
  {
    std::ofstream script(dir.path() / "hello.sh");
    script << "#!/bin/sh\necho hi from script\n";
  }
  fs::permissions(dir.path() / "hello.sh", fs::perms::owner_all);
  auto s = cmd({"./hello.sh"});
  s.cwd = dir.path().string();
  auto rs = run_process(s);
  CHECK(rs.exit_code == 0);
  CHECK(rs.stdout_text() == "hi from script\n");
}

TEST_CASE("environment: inherited, overridden, removed, or empty", "[process]") {
  ::setenv("KEEL_PROCESS_TEST_INHERITED", "from-parent", 1);
  ::setenv("KEEL_PROCESS_TEST_REMOVED", "gone", 1);
  auto o = sh("echo \"$KEEL_PROCESS_TEST_INHERITED|$KEEL_PROCESS_TEST_SET|${KEEL_PROCESS_TEST_REMOVED-unset}\"");
  o.env["KEEL_PROCESS_TEST_SET"] = "override";
  o.env_remove.push_back("KEEL_PROCESS_TEST_REMOVED");
  CHECK(run_process(o).stdout_text() == "from-parent|override|unset\n");

  auto clean = cmd({"env"});
  clean.inherit_env = false;
  clean.env["ONLY"] = "this";
  CHECK(run_process(clean).stdout_text() == "ONLY=this\n");  // `env` found on the default PATH

  // PATH of the child (not the parent's) is used to find the program.
  TempDir dir{"keel-process-test"};
  {
    std::ofstream tool(dir.path() / "keel-only-here");
    tool << "#!/bin/sh\necho found me\n";
  }
  fs::permissions(dir.path() / "keel-only-here", fs::perms::owner_all);
  auto p = cmd({"keel-only-here"});
  p.env["PATH"] = dir.path().string() + ":/usr/bin:/bin";
  auto rp = run_process(p);
  CHECK(rp.exit_code == 0);
  CHECK(rp.stdout_text() == "found me\n");
}

TEST_CASE("stdin is /dev/null unless data is given", "[process]") {
  auto r = run_process(cmd({"cat"}));
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_text().empty());

  auto o = cmd({"cat"});
  o.stdin_data = "hello\nworld\n";
  CHECK(run_process(o).stdout_text() == "hello\nworld\n");

  auto big = cmd({"wc", "-c"});
  big.stdin_data = std::string(3 * 1024 * 1024, 'z');
  CHECK(run_process(big).stdout_text() == "3145728\n");

  // A child that never reads its stdin must not get the host killed by SIGPIPE.
  auto ignore = cmd({"true"});
  ignore.stdin_data = std::string(8 * 1024 * 1024, 'z');
  CHECK(run_process(ignore).exit_code == 0);
}

TEST_CASE("the command gets no controlling terminal and a fresh process group", "[process]") {
  auto r = run_process(sh("ps -o pgid= -p $$; ps -o sid= -p $$; echo $$"));
  std::istringstream lines(r.stdout_text());
  long pgid = 0, sid = 0, pid = 0;
  lines >> pgid >> sid >> pid;
  CHECK(pid == r.pid);
  CHECK(pgid == r.pid);
  CHECK(sid == r.pid);
  CHECK(pgid != ::getpgrp());
}

TEST_CASE("a timeout kills the whole process group, grandchildren included", "[process][timeout]") {
  auto o = cmd({"bash", "-c", "sleep 30 & echo $!; sleep 30 & echo $!; wait"});
  o.timeout = 500ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(o);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(r.timed_out);
  CHECK_FALSE(r.cancelled);
  CHECK(r.spawned);
  CHECK(r.exit_code == 128 + SIGTERM);
  CHECK(elapsed >= 500ms);
  CHECK(elapsed < 1500ms);  // within ~1 s of the timeout
  CHECK(r.wall_seconds() >= 0.5);

  std::istringstream pids(r.stdout_text());
  pid_t a = 0, b = 0;
  pids >> a >> b;
  REQUIRE(a > 0);
  REQUIRE(b > 0);
  CHECK(group_dies(r.pid));
  CHECK_FALSE(pid_alive(a));
  CHECK_FALSE(pid_alive(b));
}

TEST_CASE("processes that ignore SIGTERM get SIGKILL after the grace period", "[process][timeout]") {
  // `trap '' TERM` is inherited by the children, so nothing in the group reacts to SIGTERM.
  auto o = cmd({"bash", "-c", "trap '' TERM; sleep 30 & sleep 30; wait"});
  o.timeout = 300ms;
  o.kill_grace = 200ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(o);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(r.timed_out);
  CHECK(r.exit_code == 128 + SIGKILL);
  CHECK(elapsed >= 500ms);
  CHECK(elapsed < 1500ms);
  CHECK(group_dies(r.pid));
}

TEST_CASE("cancellation kills the group", "[process][cancel]") {
  SECTION("atomic flag") {
    std::atomic<bool> flag{false};
    std::thread canceller([&] {
      std::this_thread::sleep_for(200ms);
      flag = true;
    });
    auto o = cmd({"bash", "-c", "sleep 30 & wait"});
    o.cancel_flag = &flag;
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_process(o);
    canceller.join();
    CHECK(r.cancelled);
    CHECK_FALSE(r.timed_out);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    CHECK(group_dies(r.pid));
  }
  SECTION("polled function") {
    auto t0 = std::chrono::steady_clock::now();
    auto o = cmd({"sleep", "30"});
    o.cancelled = [&] { return std::chrono::steady_clock::now() - t0 > 150ms; };
    auto r = run_process(o);
    CHECK(r.cancelled);
    CHECK(r.exit_code == 128 + SIGTERM);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
  }
}

TEST_CASE("huge output keeps memory bounded and keeps head and tail", "[process][big]") {
  // seq 1 6500000 prints ~51 MB.
  std::uint64_t expected_bytes = 0;
  for (std::uint64_t lo = 1, digits = 1; lo <= 6500000; lo *= 10, ++digits)
    expected_bytes += (std::min<std::uint64_t>(lo * 10 - 1, 6500000) - lo + 1) * (digits + 1);

  rusage before{};
  ::getrusage(RUSAGE_SELF, &before);
  std::uint64_t streamed = 0;
  auto o = cmd({"seq", "1", "6500000"});
  o.max_output_bytes = 256 * 1024;
  o.on_output = [&](OutputStream s, std::string_view chunk) {
    CHECK(s == OutputStream::Stdout);
    streamed += chunk.size();
  };
  auto r = run_process(o);
  rusage after{};
  ::getrusage(RUSAGE_SELF, &after);

  CHECK(r.exit_code == 0);
  CHECK(streamed == expected_bytes);
  CHECK(r.stdout_buf.total_bytes() == expected_bytes);
  CHECK(r.stdout_buf.total_lines() == 6500000);
  CHECK(r.stdout_buf.truncated());
  CHECK(r.stdout_buf.retained_bytes() == 256 * 1024);
  CHECK(r.stdout_buf.dropped_bytes() == expected_bytes - 256 * 1024);
  CHECK(r.stdout_buf.head().substr(0, 6) == "1\n2\n3\n");
  auto tail = r.stdout_buf.tail();
  CHECK(tail.substr(tail.size() - 16) == "6499999\n6500000\n");
  CHECK(r.aggregated.total_bytes() == expected_bytes);
  CHECK(r.stderr_buf.total_bytes() == 0);
  // The peak resident size grew by far less than the output (ru_maxrss is in KiB).
  CHECK(after.ru_maxrss - before.ru_maxrss < 24 * 1024);
}

TEST_CASE("programs that cannot run are reported, not thrown", "[process][errors]") {
  auto missing = run_process(cmd({"keel-definitely-not-a-command"}));
  CHECK_FALSE(missing.spawned);
  CHECK(missing.exit_code == 127);
  CHECK(missing.error == "command not found: keel-definitely-not-a-command");

  auto missing_path = run_process(cmd({"/nonexistent/bin/tool"}));
  CHECK(missing_path.exit_code == 127);
  CHECK(missing_path.error.find("/nonexistent/bin/tool") != std::string::npos);

  auto bad_cwd = cmd({"true"});
  bad_cwd.cwd = "/nonexistent/keel/dir";
  auto rc = run_process(bad_cwd);
  CHECK(rc.exit_code == 127);
  CHECK(rc.error == "working directory /nonexistent/keel/dir does not exist");

  TempDir dir{"keel-process-test"};
  {
    std::ofstream f(dir.path() / "not-executable");
    f << "echo hi\n";
  }
  fs::permissions(dir.path() / "not-executable", fs::perms::owner_read | fs::perms::owner_write);
  auto noexec = run_process(cmd({(dir.path() / "not-executable").string()}));
  CHECK(noexec.exit_code == (::geteuid() == 0 ? 126 : 126));
  CHECK(noexec.error.find("cannot execute") != std::string::npos);

  auto file_cwd = cmd({"true"});
  file_cwd.cwd = (dir.path() / "not-executable").string();
  CHECK(run_process(file_cwd).error.find("is not a directory") != std::string::npos);

  CHECK(run_process(ProcessOptions{}).exit_code == 127);
}

TEST_CASE("output held by a background grandchild is drained for a bounded time", "[process]") {
  auto o = cmd({"bash", "-c", "echo started; (sleep 0.1; echo later; sleep 30) & exit 0"});
  o.drain_timeout = 600ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_process(o);
  auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(r.exit_code == 0);
  CHECK_FALSE(r.timed_out);
  CHECK(r.stdout_text() == "started\nlater\n");
  CHECK(elapsed < 1500ms);
  ::kill(-r.pid, SIGKILL);  // the background job is not ours to kill; clean up after the test
}

TEST_CASE("streaming callback sees every chunk in order", "[process]") {
  std::string seen;
  auto o = sh("for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.02; done");
  o.on_output = [&](OutputStream, std::string_view chunk) { seen.append(chunk); };
  auto r = run_process(o);
  CHECK(seen == r.output());
  CHECK(seen == "out1\nerr1\nout2\nerr2\nout3\nerr3\n");

  // A throwing callback does not break the run.
  auto t = sh("echo a; echo b");
  t.on_output = [](OutputStream, std::string_view) { throw std::runtime_error("boom"); };
  auto rt = run_process(t);
  CHECK(rt.exit_code == 0);
  CHECK(rt.stdout_text() == "a\nb\n");
}

TEST_CASE("CappedBuffer keeps head and tail and counts what it dropped", "[process][buffer]") {
  CappedBuffer b(10);
  b.append("0123");
  CHECK_FALSE(b.truncated());
  CHECK(b.str() == "0123");
  b.append("456789");
  CHECK(b.str() == "0123456789");
  b.append("ab\ncdefghij");
  CHECK(b.truncated());
  CHECK(b.head() == "01234");
  CHECK(b.tail() == "fghij");
  CHECK(b.dropped_bytes() == 11);
  CHECK(b.dropped_lines() == 1);
  CHECK(b.total_bytes() == 21);
  CHECK(b.total_lines() == 2);
  for (int i = 0; i < 1000; ++i) b.append("x\n");
  CHECK(b.tail() == "\nx\nx\n");
  CHECK(b.dropped_lines() == 1 + 1000 - 3);
  CHECK(b.retained_bytes() == 10);
}

TEST_CASE("find_on_path and shell quoting", "[process]") {
  auto sh_path = find_on_path("sh");
  REQUIRE(sh_path);
  CHECK(sh_path->back() != '/');
  CHECK(::access(sh_path->c_str(), X_OK) == 0);
  CHECK_FALSE(find_on_path("keel-definitely-not-a-command"));
  CHECK(find_on_path("sh", std::string_view("/nonexistent")) == std::nullopt);
  CHECK(find_on_path("sh", std::string_view("/nonexistent:/bin")) == std::optional<std::string>("/bin/sh"));
  CHECK(find_on_path("/bin/sh") == std::optional<std::string>("/bin/sh"));
  CHECK_FALSE(find_on_path("/etc/passwd"));
  CHECK_FALSE(find_on_path(""));

  CHECK(shell_quote("ls") == "ls");
  CHECK(shell_quote("") == "''");
  CHECK(shell_quote("a b") == "'a b'");
  CHECK(shell_quote("it's") == "'it'\"'\"'s'");
  CHECK(shell_join({"bash", "-lc", "echo hi && ls -la"}) == "bash -lc 'echo hi && ls -la'");
}

TEST_CASE("odd settings do not hang or misfire", "[process][errors]") {
  // A timeout too large for the clock is no timeout.
  auto huge = cmd({"true"});
  huge.timeout = std::chrono::milliseconds(std::numeric_limits<std::int64_t>::max() / 2);
  auto rh = run_process(huge);
  CHECK(rh.exit_code == 0);
  CHECK_FALSE(rh.timed_out);

  // With SIGCHLD ignored the kernel reaps the child itself: the output is still collected and
  // the lost exit status is reported instead of waiting forever.
  auto old = std::signal(SIGCHLD, SIG_IGN);
  auto r = run_process(sh("echo still here"));
  std::signal(SIGCHLD, old);
  CHECK(r.stdout_text() == "still here\n");
  CHECK(r.exit_code == -1);
  CHECK(r.error.find("exit status") != std::string::npos);
}
