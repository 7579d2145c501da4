#include <keel/market/atomic_files.hpp>

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>

namespace keel::market {
namespace fs = std::filesystem;

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string random_token() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string s(16, '0');
  auto v = rng();
  for (auto& c : s) {
    c = hex[v & 15];
    v >>= 4;
  }
  return s;
}

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_durably(const fs::path& path, const std::string& content, bool sync) {
  fs::path tmp = path;
  tmp += ".tmp-" + random_token();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
  const char* p = content.data();
  std::size_t left = content.size();
  bool ok = true;
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      ok = false;
      break;
    }
    p += w;
    left -= static_cast<std::size_t>(w);
  }
  ok = ok && (!sync || ::fsync(fd) == 0);
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(err));
  }
  if (sync) fsync_directory(path.parent_path());
}

void replace_directory(const fs::path& fresh, const fs::path& target) {
  fsync_directory(fresh);
  if (::renameat2(AT_FDCWD, fresh.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fsync_directory(target.parent_path());
    std::error_code ec;
    fs::remove_all(fresh, ec);  // now holds the old content
    return;
  }
  if (errno != ENOENT) {
    // No exchange support (old file system): move the old one aside first.
    fs::path old = target;
    old += ".old-" + random_token();
    fs::rename(target, old);
    fs::rename(fresh, target);
    std::error_code ec;
    fs::remove_all(old, ec);
  } else {
    fs::rename(fresh, target);
  }
  fsync_directory(target.parent_path());
}

void remove_directory_atomically(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  fs::path trash = dir.parent_path() / (".removing-" + dir.filename().string() + "-" + random_token());
  fs::rename(dir, trash);
  fsync_directory(dir.parent_path());
  fs::remove_all(trash, ec);
}

}  // namespace keel::market
