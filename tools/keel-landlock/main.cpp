// keel-landlock-exec — sandboxes itself, then becomes the command.
//
//   keel-landlock-exec --policy '<json>' -- argv...
//   keel-landlock-exec --check            (prints the Landlock ABI; exit 0 if usable)
//
// The policy is the effective one the landlock module computed:
//   {"writable_roots": [abs dirs], "protected_paths": [abs], "network_access": bool,
//    "mount_namespace": bool (default true)}
//
// In order, before exec:
//  1. Protected paths inside writable roots (<root>/.git, .keel, keel's home). Landlock only
//     adds rights — a subfolder of a writable tree cannot be taken back — so:
//     a. preferably, a private mount namespace (directly when we hold CAP_SYS_ADMIN, else in a
//        user namespace of our own) re-binds each protected path read-only; the writable root
//        is then granted whole;
//     b. where no namespace can be made, the writable root is not granted as a whole: every
//        child that neither is nor contains a protected path gets full write rights, and the
//        directories on the way to a protected path keep only the write rights of their
//        existing files (so nothing can be created, removed or renamed directly in them).
//  2. Landlock: read and execute everywhere; write only beneath the writable roots (and on
//     /dev/null, /dev/tty, ptys and friends); with ABI >= 4 and no network, TCP bind/connect
//     denied too; with ABI >= 6, signals to processes outside the sandbox denied (and abstract
//     UNIX sockets when the network is off).
//  3. Every capability dropped (bounding set included), PR_SET_NO_NEW_PRIVS.
//  4. No network: a seccomp filter (libseccomp) makes socket()/socketpair() of every family
//     but AF_UNIX fail with EPERM, and io_uring (which can create sockets behind seccomp's
//     back) unavailable. Syscalls of another ABI (int 0x80) fail with ENOSYS.
//  5. execvp(argv). Everything above is inherited by every descendant.
//
// Exit status 125 (with a line on stderr starting "keel-landlock-exec: ") means the sandbox
// could not be set up and nothing was run; 127/126 mean the command could not be executed.
#include <boost/json/src.hpp>

#include <linux/capability.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;

// Landlock constants newer than the installed <linux/landlock.h> (Debian 12 ships 6.1's).
constexpr std::uint64_t kFsExecute = 1ULL << 0;
constexpr std::uint64_t kFsWriteFile = 1ULL << 1;
constexpr std::uint64_t kFsReadFile = 1ULL << 2;
constexpr std::uint64_t kFsReadDir = 1ULL << 3;
constexpr std::uint64_t kFsRemoveDir = 1ULL << 4;
constexpr std::uint64_t kFsRemoveFile = 1ULL << 5;
constexpr std::uint64_t kFsMakeChar = 1ULL << 6;
constexpr std::uint64_t kFsMakeDir = 1ULL << 7;
constexpr std::uint64_t kFsMakeReg = 1ULL << 8;
constexpr std::uint64_t kFsMakeSock = 1ULL << 9;
constexpr std::uint64_t kFsMakeFifo = 1ULL << 10;
constexpr std::uint64_t kFsMakeBlock = 1ULL << 11;
constexpr std::uint64_t kFsMakeSym = 1ULL << 12;
constexpr std::uint64_t kFsRefer = 1ULL << 13;     // ABI 2
constexpr std::uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr std::uint64_t kNetBindTcp = 1ULL << 0;     // ABI 4
constexpr std::uint64_t kNetConnectTcp = 1ULL << 1;  // ABI 4
constexpr std::uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr std::uint64_t kScopeSignal = 1ULL << 1;        // ABI 6

constexpr int kRulePathBeneath = 1;

struct RulesetAttr {  // struct landlock_ruleset_attr, as of ABI 6
  std::uint64_t handled_access_fs;
  std::uint64_t handled_access_net;
  std::uint64_t scoped;
};

struct __attribute__((packed)) PathBeneathAttr {  // struct landlock_path_beneath_attr
  std::uint64_t allowed_access;
  std::int32_t parent_fd;
};

constexpr int kSetupFailed = 125;

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "keel-landlock-exec: %s; the command was not run\n", message.c_str());
  std::exit(kSetupFailed);
}

std::string errno_text(int err) { return std::strerror(err); }

int landlock_abi() {
  long v = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return v < 0 ? -errno : static_cast<int>(v);
}

std::string landlock_missing(int err) {
  if (err == ENOSYS) return "Landlock is not supported by this kernel (it needs Linux 5.13 or later built with CONFIG_SECURITY_LANDLOCK)";
  if (err == EOPNOTSUPP)
    return "Landlock is built into this kernel but disabled; add \"landlock\" to the lsm= boot parameter";
  return "Landlock is unavailable: " + errno_text(err);
}

bool within(const std::string& path, const std::string& root) {
  if (root == "/") return true;
  return path.size() >= root.size() && path.compare(0, root.size(), root) == 0 &&
         (path.size() == root.size() || path[root.size()] == '/');
}

struct Policy {
  std::vector<std::string> writable;
  std::vector<std::string> protect;
  bool network = false;
  bool mount_namespace = true;
};

Policy parse_policy(const char* text) {
  Policy p;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) fail("--policy is not a JSON object");
  const auto& o = v.as_object();
  auto paths = [&](const char* key, std::vector<std::string>& out) {
    const auto* a = o.if_contains(key);
    if (!a || a->is_null()) return;
    if (!a->is_array()) fail(std::string("policy field '") + key + "' must be an array of absolute paths");
    for (const auto& e : a->as_array()) {
      if (!e.is_string() || e.as_string().empty() || e.as_string()[0] != '/')
        fail(std::string("policy field '") + key + "' must contain absolute paths");
      std::string s(e.as_string());
      while (s.size() > 1 && s.back() == '/') s.pop_back();
      out.push_back(std::move(s));
    }
  };
  paths("writable_roots", p.writable);
  paths("protected_paths", p.protect);
  if (const auto* n = o.if_contains("network_access"); n && n->is_bool()) p.network = n->as_bool();
  if (const auto* m = o.if_contains("mount_namespace"); m && m->is_bool()) p.mount_namespace = m->as_bool();
  return p;
}

// ---- 1a. protected paths through a private mount namespace -----------------------------------

bool write_file(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

bool enter_mount_namespace() {
  if (::unshare(CLONE_NEWNS) == 0) return true;  // we hold CAP_SYS_ADMIN (e.g. root)
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
  // Map our own ids to themselves: files keep their owners, nobody becomes root.
  return write_file("/proc/self/setgroups", "deny") &&
         write_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n") &&
         write_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
}

bool bind_read_only(const std::string& path) {
  if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return false;
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) return false;
  // Flags locked by a user namespace must be kept on remount.
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;
  if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return ::mount(nullptr, path.c_str(), nullptr, flags, nullptr) == 0;
}

bool protect_with_mounts(const std::vector<std::string>& paths) {
  if (!enter_mount_namespace()) return false;
  // Nothing done here may propagate back to the host's mount table.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  for (const auto& p : paths)
    if (!bind_read_only(p)) return false;
  return true;
}

// ---- 2. Landlock ------------------------------------------------------------------------------

class Ruleset {
 public:
  explicit Ruleset(int abi, bool network) : abi_(abi) {
    read_ = kFsExecute | kFsReadFile | kFsReadDir;
    file_write_ = kFsWriteFile | (abi >= 3 ? kFsTruncate : 0);
    dir_write_ = file_write_ | kFsRemoveDir | kFsRemoveFile | kFsMakeDir | kFsMakeReg | kFsMakeSock | kFsMakeFifo |
                 kFsMakeSym | (abi >= 2 ? kFsRefer : 0);
    RulesetAttr attr{};
    attr.handled_access_fs = read_ | dir_write_ | kFsMakeChar | kFsMakeBlock;
    std::size_t size = sizeof(std::uint64_t);
    if (abi >= 4) {
      attr.handled_access_net = network ? 0 : (kNetBindTcp | kNetConnectTcp);
      size = 2 * sizeof(std::uint64_t);
    }
    if (abi >= 6) {
      attr.scoped = kScopeSignal | (network ? 0 : kScopeAbstractUnix);
      size = sizeof(RulesetAttr);
    }
    fd_ = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
    if (fd_ < 0) fail("cannot create a Landlock ruleset: " + errno_text(errno));
  }

  std::uint64_t read() const { return read_; }
  std::uint64_t file_write() const { return file_write_; }
  std::uint64_t dir_write() const { return dir_write_; }

  // Grants `access` beneath `path`; a path that does not exist is skipped. Rights that only
  // make sense on directories are dropped for other files.
  void allow(const std::string& path, std::uint64_t access, bool follow = true) {
    int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES) return;
      fail("cannot open " + path + " for a Landlock rule: " + errno_text(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) access &= kFsExecute | kFsReadFile | kFsWriteFile | kFsTruncate;
    PathBeneathAttr rule{access, fd};
    if (access != 0 && ::syscall(SYS_landlock_add_rule, fd_, kRulePathBeneath, &rule, 0) != 0) {
      int err = errno;
      ::close(fd);
      fail("cannot add a Landlock rule for " + path + ": " + errno_text(err));
    }
    ::close(fd);
  }

  // 1b: write rights beneath `dir` except on the protected paths inside it.
  void allow_except(const std::string& dir, const std::vector<std::string>& protect) {
    std::vector<std::string> inside;
    for (const auto& p : protect)
      if (within(p, dir)) inside.push_back(p);
    for (const auto& p : inside)
      if (p == dir) return;  // the whole root is protected
    if (inside.empty()) return allow(dir, read_ | dir_write_);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return;
    DIR* d = ::fdopendir(dfd);
    if (!d) {
      ::close(dfd);
      return;
    }
    std::vector<std::string> children;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") children.push_back(dir == "/" ? "/" + name : dir + "/" + name);
    }
    ::closedir(d);
    for (const auto& child : children) {
      struct stat st {};
      if (::lstat(child.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) continue;  // a link's target has its own rules
      if (S_ISDIR(st.st_mode)) allow_except(child, inside);
      else if (std::none_of(inside.begin(), inside.end(), [&](const std::string& p) { return p == child; }))
        allow(child, read_ | file_write_, false);
    }
  }

  void restrict_self() {
    if (::syscall(SYS_landlock_restrict_self, fd_, 0) != 0) fail("cannot enforce the Landlock ruleset: " + errno_text(errno));
    ::close(fd_);
  }

 private:
  int abi_;
  int fd_ = -1;
  std::uint64_t read_, file_write_, dir_write_;
};

// ---- 3. capabilities ----------------------------------------------------------------------------

void drop_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) fail("capget failed: " + errno_text(errno));
  if ((data[0].effective | data[1].effective | data[0].permitted | data[1].permitted) == 0) return;
  for (int cap = 0; cap <= 63; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      fail("cannot drop capability " + std::to_string(cap) + " from the bounding set: " + errno_text(errno));
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_data_struct none[2]{};
  if (::syscall(SYS_capset, &header, none) != 0) fail("cannot drop capabilities: " + errno_text(errno));
}

// ---- 4. seccomp ---------------------------------------------------------------------------------

void deny_network() {
  scmp_filter_ctx ctx = ::seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) fail("seccomp_init failed");
  auto check = [&](int rc, const char* what) {
    if (rc != 0) {
      ::seccomp_release(ctx);
      fail(std::string("cannot build the seccomp filter (") + what + "): " + errno_text(-rc));
    }
  };
  check(::seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS)), "bad-arch action");
  check(::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)), "socket");
  check(::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)),
        "socketpair");
  check(::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0), "io_uring_setup");
  check(::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), 0), "io_uring_enter");
  check(::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_register), 0), "io_uring_register");
  check(::seccomp_load(ctx), "load");
  ::seccomp_release(ctx);
}

int usage() {
  std::fprintf(stderr,
               "usage: keel-landlock-exec --policy '<json>' -- command [args...]\n"
               "       keel-landlock-exec --check\n");
  return kSetupFailed;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--check") == 0) {
    int abi = landlock_abi();
    if (abi < 1) {
      std::fprintf(stderr, "keel-landlock-exec: %s\n", landlock_missing(-abi).c_str());
      return kSetupFailed;
    }
    std::printf("landlock abi %d\n", abi);
    return 0;
  }
  if (argc < 5 || std::strcmp(argv[1], "--policy") != 0 || std::strcmp(argv[3], "--") != 0) return usage();
  Policy policy = parse_policy(argv[2]);
  char** command = argv + 4;

  int abi = landlock_abi();
  if (abi < 1) fail(landlock_missing(-abi));

  std::vector<std::string> protect;  // existing protected paths inside a writable root
  for (const auto& p : policy.protect) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (std::any_of(policy.writable.begin(), policy.writable.end(), [&](const std::string& w) { return within(p, w); }))
      protect.push_back(p);
  }
  bool mounted = !protect.empty() && policy.mount_namespace && protect_with_mounts(protect);

  Ruleset rules(abi, policy.network);
  rules.allow("/", rules.read());
  for (const char* dev : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/ptmx",
                          "/dev/pts"})
    rules.allow(dev, rules.read() | rules.file_write());
  for (const auto& w : policy.writable) {
    if (mounted || protect.empty()) rules.allow(w, rules.read() | rules.dir_write());
    else rules.allow_except(w, protect);
  }

  drop_capabilities();
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("cannot set no_new_privs: " + errno_text(errno));
  rules.restrict_self();
  if (!policy.network) deny_network();

  ::execvp(command[0], command);
  int err = errno;
  std::fprintf(stderr, "keel-landlock-exec: cannot run %s: %s\n", command[0], errno_text(err).c_str());
  return err == ENOENT ? 127 : 126;
}
