#include "sealed_library.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace keel {
namespace {

std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// True when the loader already holds a library under this path: one that was unloaded but
// stayed resident (RTLD_NODELETE, or C++ unique symbols) after its descriptor was closed.
bool path_in_use(const std::string& path) {
  // RTLD_NOLOAD only looks: it finds a library by path or by file identity, maps nothing.
  void* h = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
  if (!h) return false;
  dlclose(h);
  return true;
}

int stage(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  int fd = memfd_create(("keel-module-" + name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw LoadError(std::string("memfd_create failed: ") + std::strerror(errno));
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      throw LoadError(std::string("cannot stage library: ") + std::strerror(e));
    }
    off += static_cast<std::size_t>(n);
  }
  // Sealed: nothing can change the bytes, before the loader maps them or after (the descriptor
  // stays open, and /proc/<pid>/fd/N could otherwise be opened for writing). Unsealed: refuse.
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    int e = errno;
    ::close(fd);
    throw LoadError(std::string("cannot seal the staged library: ") + std::strerror(e));
  }
  // A path still held by a resident library would make the loader hand that one back.
  while (path_in_use(fd_path(fd))) {
    int next = fcntl(fd, F_DUPFD_CLOEXEC, fd + 1);
    if (next < 0) {
      int e = errno;
      ::close(fd);
      throw LoadError(std::string("cannot stage library: ") + std::strerror(e));
    }
    ::close(fd);
    fd = next;
  }
  return fd;
}

}  // namespace

SealedLibrary::SealedLibrary(SealedLibrary&& other) noexcept
    : lib_(std::move(other.lib_)), fd_(std::exchange(other.fd_, -1)) {}

SealedLibrary& SealedLibrary::operator=(SealedLibrary&& other) noexcept {
  if (this != &other) {
    lib_.unload();
    if (fd_ >= 0) ::close(fd_);
    lib_ = std::move(other.lib_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

SealedLibrary::~SealedLibrary() {
  lib_.unload();  // before the descriptor, so its path is never free while the library is mapped
  if (fd_ >= 0) ::close(fd_);
}

SealedLibrary SealedLibrary::load(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  SealedLibrary out;
  out.fd_ = stage(bytes, name);
  try {
    out.lib_.load(fd_path(out.fd_), boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw LoadError(std::string("the dynamic loader refused it: ") + e.what());
  }
  return out;
}

}  // namespace keel
