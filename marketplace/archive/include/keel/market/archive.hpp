// Package archives (.keelpkg): writing them deterministically and unpacking them safely.
//
// A .keelpkg is a gzip-compressed POSIX pax tar holding regular files only. Writing is
// deterministic: the same members with the same contents give the same bytes. Extraction
// works on bytes already in memory (the caller verifies their signature first and hands
// exactly those bytes over, so nothing can change between check and use), accepts only
// regular files and directories with plain relative names, enforces entry-count and size
// limits while the data streams, and unpacks into a fresh sibling directory that is renamed
// into place only once it is complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::market {

// Every failure of this part: the message names the archive entry (when there is one) and
// the reason, e.g. "archive entry '../x' refused: it contains a '..' component".
class __attribute__((visibility("default"))) ArchiveError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ArchiveMember {
    std::string name;              // name inside the archive, e.g. "lib/libfoo.so"
    std::filesystem::path source;  // regular file on disk whose bytes become the member
};

// Writes `members` to `out` as a gzip-compressed pax tar. Members are stored as regular
// files, mode 0755 if the source has any execute bit and 0644 otherwise, mtime 0, uid/gid
// 0, no user/group names, sorted by name (byte order), so the output depends only on the
// names and contents. Names must pass the same rules extraction applies (relative, no '.'
// or '..' or empty components, no backslashes or control characters) and be unique.
// The archive is written to "<out>.tmp", fsynced, then renamed over `out`; on failure
// "<out>.tmp" is removed and `out` is untouched.
void write_archive(const std::filesystem::path& out, const std::vector<ArchiveMember>& members);

struct ExtractLimits {
    std::uint64_t max_total_bytes = std::uint64_t{256} << 20;  // sum of all file data
    std::uint64_t max_entry_bytes = std::uint64_t{128} << 20;  // any one file's data
    std::size_t max_entries = 1000;                            // files + directories
};

// Unpacks the tar (gzip-compressed or plain) in `archive_bytes` into the new directory
// `target`, which must not exist (its parent directories are created if missing).
// Refused, with an ArchiveError naming the entry and the reason: absolute names, '..' or
// '.' or empty components, backslashes and control characters in names, symlinks, hard
// links, devices, FIFOs, anything but regular files and directories, duplicate entries, a
// file also used as a directory, more than max_entries entries, file data past
// max_entry_bytes / max_total_bytes or past the size its header declares (counted while
// the data streams, sparse holes included), gzip data failing its CRC-32 or length check,
// junk after the gzip stream, and corrupt or truncated input.
// The bytes are checked completely before anything is written (a refused archive never
// touches the disk), then walked again, with the same checks, to write them.
// Files are created 0644 (0755 if the entry has an execute bit), directories 0755; owners,
// times, set-id bits, ACLs and xattrs in the archive are ignored.
// Writing happens in "<target.parent>/.tmp-<random>" (0700), which is fsynced and renamed
// to `target` (never replacing anything, even an empty directory) only when complete; on
// any error it is removed and nothing is left at `target`. Returns the names of the
// extracted regular files, in archive order.
std::vector<std::string> extract_archive(std::span<const std::uint8_t> archive_bytes,
                                         const std::filesystem::path& target,
                                         const ExtractLimits& limits = {});

// Reads `archive` into memory, then extract_archive().
std::vector<std::string> extract_archive_file(const std::filesystem::path& archive,
                                              const std::filesystem::path& target,
                                              const ExtractLimits& limits = {});

// The whole content of a regular file; throws ArchiveError naming the path on failure.
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path);

}  // namespace keel::market
