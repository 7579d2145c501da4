// Shared by the archive sources only; not installed.
#pragma once

#include "keel/market/archive.hpp"

#include <archive.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keel::market::detail {

// ---- rules.cpp: names, limits, error messages -------------------------------------------

// The name as it can be shown in a message: printable ASCII kept, everything else escaped.
std::string printable(std::string_view name);

// Why `name` is not acceptable as a member name, or an empty string when it is. A name is
// a '/'-separated list of components; none may be empty, "." or ".."; it may not start
// with '/', contain a backslash or a control character, or be longer than the limits.
std::string name_problem(std::string_view name);

// "archive entry '<name>' refused: <reason>"
[[noreturn]] void refuse_entry(std::string_view name, std::string_view reason);

// strerror() text for `err`.
std::string errno_text(int err);

// Counts entries and file bytes against ExtractLimits. Header sizes are checked up front
// (declare) and the bytes really produced are checked again while they stream (consume),
// so a header that lies cannot get past the limits.
class Budget {
public:
    explicit Budget(const ExtractLimits& limits) : limits_(limits) {}

    void count_entry(std::string_view name);
    void begin_file(std::string_view name, std::uint64_t declared_size);
    void consume(std::string_view name, std::uint64_t bytes);
    void end_file(std::string_view name);

private:
    ExtractLimits limits_;
    std::size_t entries_ = 0;
    std::uint64_t total_ = 0;
    std::uint64_t declared_ = 0;
    std::uint64_t entry_ = 0;
};

// ---- tar_stream.cpp: the tar bytes inside an archive ------------------------------------

// Feeds libarchive's tar reader the uncompressed tar stream of an in-memory archive.
// gzip input (one or more members) is inflated here with zlib, so that every member's
// CRC-32 and length are verified (libarchive's own gzip reader does not check them);
// other input is passed through as an uncompressed tar. The tar stream may not exceed
// `max_stream_bytes`, which bounds the work even for data the tar reader skips internally.
class TarStream {
public:
    TarStream(std::span<const std::uint8_t> input, std::uint64_t max_stream_bytes);
    ~TarStream();
    TarStream(const TarStream&) = delete;
    TarStream& operator=(const TarStream&) = delete;

    // For archive_read_open(): the next chunk, 0 at the end, -1 on error (see error()).
    static la_ssize_t read_callback(struct archive* a, void* self, const void** buffer);

    // Called once the tar reader reached its end: inflates what is left so the gzip
    // trailers are verified too. Throws ArchiveError.
    void finish();

    // Why the last read failed, or empty.
    const std::string& error() const { return error_; }

private:
    la_ssize_t next(const void** buffer);
    la_ssize_t fail(std::string why);  // records `why`, returns -1

    std::span<const std::uint8_t> input_;
    std::uint64_t max_bytes_;
    std::uint64_t produced_ = 0;
    bool gzip_ = false;
    bool done_ = false;
    struct Inflater;
    std::unique_ptr<Inflater> z_;
    std::vector<unsigned char> out_;
    std::string error_;
};

// ---- io.cpp: file descriptors and small POSIX helpers -----------------------------------

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept;
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd();

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release();
    // Closes now and reports close() failures (which can mean lost data) as errno.
    int close();

private:
    int fd_ = -1;
};

// Writes all of [data, data+size) to `fd`; returns 0 or the errno of the failure.
int write_all(int fd, const void* data, std::size_t size);

// fsync() of a directory by path (makes a rename in it durable); returns 0 or errno.
int fsync_directory(const std::filesystem::path& dir);

// 16 random hex digits for temporary names.
std::string random_hex();

}  // namespace keel::market::detail
