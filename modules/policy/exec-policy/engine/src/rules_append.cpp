// "Approve and add a rule": appending an allow rule to a rules file.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "keel/policy/rules.hpp"

namespace keel::policy {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string read_all(int fd, const std::string& name) {
  std::string out;
  char buf[8192];
  off_t at = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + name);
    }
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
}

void write_all(int fd, std::string_view data, const std::string& name) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write " + name);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool is_same_allow_rule(const PrefixRule& r, const std::vector<std::string>& prefix) {
  if (r.decision != RuleDecision::allow || r.pattern.size() != prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (r.pattern[i].alternatives.size() != 1 || r.pattern[i].alternatives[0] != prefix[i]) return false;
  }
  return true;
}

}  // namespace

std::string append_allow_rule(const std::filesystem::path& path, const std::vector<std::string>& prefix,
                              std::string_view justification) {
  if (prefix.empty()) throw std::invalid_argument("append_allow_rule: empty command prefix");
  const std::string text = format_prefix_rule(prefix, RuleDecision::allow, justification);
  // What we write must read back as exactly this rule.
  const auto check = parse_rules(text, "<generated rule>");
  if (check.size() != 1 || !is_same_allow_rule(check[0], prefix)) {
    throw std::logic_error("append_allow_rule: generated rule does not round-trip: " + text);
  }

  const std::string name = path.string();
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) throw std::system_error(ec, "create " + path.parent_path().string());
  }
  Fd fd(::open(name.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_errno("open " + name);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw_errno("lock " + name);
  }

  const std::string existing = read_all(fd.get(), name);
  try {
    for (const auto& r : parse_rules(existing, name)) {
      if (is_same_allow_rule(r, prefix)) return text;  // already there
    }
  } catch (const RulesError&) {
    // A broken file still gets the user's approval appended; loading it reports the error.
  }
  std::string out;
  if (!existing.empty() && existing.back() != '\n') out.push_back('\n');
  out += text;
  out.push_back('\n');
  write_all(fd.get(), out, name);
  if (::fsync(fd.get()) != 0) throw_errno("fsync " + name);
  return text;  // the lock goes with the descriptor
}

}  // namespace keel::policy
