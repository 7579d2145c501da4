// Small POSIX helpers shared by writing and extraction, and read_file_bytes().
#include "archive_internal.hpp"

#include <cerrno>
#include <cstdio>
#include <random>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace keel::market {

namespace detail {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = other.release();
    }
    return *this;
}

UniqueFd::~UniqueFd() { close(); }

int UniqueFd::release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
}

int UniqueFd::close() {
    if (fd_ < 0) return 0;
    // Linux always releases the descriptor, even when close() reports an error: never retry.
    int rc = ::close(release());
    return rc == 0 || errno == EINTR ? 0 : errno;
}

int write_all(int fd, const void* data, std::size_t size) {
    auto* p = static_cast<const unsigned char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
    return 0;
}

int fsync_directory(const std::filesystem::path& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) return errno;
    return 0;
}

std::string random_hex() {
    std::random_device rd;
    std::string out;
    for (int i = 0; i < 2; ++i) {
        char buf[9];
        std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(rd()));
        out += buf;
    }
    return out;
}

}  // namespace detail

std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path) {
    auto fail = [&](const std::string& why) -> void {
        throw ArchiveError("cannot read '" + path.string() + "': " + why);
    };
    detail::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) fail(detail::errno_text(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(detail::errno_text(errno));
    if (!S_ISREG(st.st_mode)) fail("not a regular file");

    std::vector<std::uint8_t> bytes;
    bytes.reserve(static_cast<std::size_t>(st.st_size));
    std::uint8_t buf[1 << 16];
    while (true) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(detail::errno_text(errno));
        }
        if (n == 0) break;
        bytes.insert(bytes.end(), buf, buf + n);
    }
    return bytes;
}

}  // namespace keel::market
