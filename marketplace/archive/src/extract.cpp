// Safe extraction: tar (optionally gzip) from memory into a fresh directory that is moved
// into place only when complete.
//
// The archive is walked twice over the same bytes. The first walk checks everything —
// names, types, duplicates, limits, the data of every entry as it streams, the gzip CRCs —
// and writes nothing, so a refused archive never touches the disk. The second walk repeats
// every check and writes into a private temporary directory with descriptor-relative calls
// that never follow or create links.
#include "archive_internal.hpp"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace keel::market {

namespace fs = std::filesystem;

namespace {

using detail::errno_text;
using detail::printable;
using detail::refuse_entry;
using detail::UniqueFd;

constexpr std::size_t kMaxTempAttempts = 16;
constexpr std::size_t kChunk = std::size_t{256} << 10;

struct ReaderDeleter {
    void operator()(struct archive* a) const { archive_read_free(a); }
};
using Reader = std::unique_ptr<struct archive, ReaderDeleter>;

std::string archive_text(struct archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

// The most uncompressed tar data an archive within `limits` can need: all file data plus,
// per entry, a header, padding and extended (pax / long name) headers, plus end blocks.
std::uint64_t stream_limit(const ExtractLimits& limits) {
    constexpr std::uint64_t kPerEntry = 16 << 10;
    constexpr std::uint64_t kSlack = 1 << 20;
    const std::uint64_t max = UINT64_MAX;
    std::uint64_t overhead = limits.max_entries > (max - kSlack) / kPerEntry
                                 ? max
                                 : limits.max_entries * kPerEntry + kSlack;
    return limits.max_total_bytes > max - overhead ? max : limits.max_total_bytes + overhead;
}

std::vector<std::string_view> split(std::string_view name) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        auto slash = name.find('/', start);
        if (slash == std::string_view::npos) {
            parts.push_back(name.substr(start));
            return parts;
        }
        parts.push_back(name.substr(start, slash - start));
        start = slash + 1;
    }
}

// One accepted entry.
struct Entry {
    std::string name;   // as in the archive (for messages)
    std::string clean;  // validated relative path, no trailing '/'
    bool is_dir = false;
    mode_t mode = 0644;  // what will be created: 0644 / 0755
};

// Where accepted entries go. The validating walk has none.
class Sink {
public:
    virtual ~Sink() = default;
    virtual void directory(const Entry& e) = 0;
    virtual void begin_file(const Entry& e) = 0;
    virtual void data(const Entry& e, const unsigned char* bytes, std::size_t size) = 0;
    virtual void end_file(const Entry& e) = 0;
};

// Reads the archive and applies every rule; hands accepted entries to `sink` (if any).
// Returns the names of the regular files, in archive order.
std::vector<std::string> walk(std::span<const std::uint8_t> bytes, const ExtractLimits& limits,
                              Sink* sink) {
    // gzip is inflated by TarStream (which checks CRCs); libarchive only parses tar.
    detail::TarStream stream(bytes, stream_limit(limits));
    Reader reader(archive_read_new());
    struct archive* a = reader.get();
    if (!a) throw ArchiveError("out of memory creating an archive reader");
    if (archive_read_support_format_tar(a) != ARCHIVE_OK)
        throw ArchiveError("cannot set up the archive reader: " + archive_text(a));

    std::size_t index = 0;
    std::string last;
    // The tar reader failed: report our own stream's reason if it was the cause.
    auto corrupt = [&]() {
        std::string where =
            index == 0 ? "at its start" : "in or after entry '" + printable(last) + "'";
        std::string why = stream.error().empty()
                              ? "it is corrupt or truncated: " + archive_text(a)
                              : stream.error();
        throw ArchiveError("archive refused (" + where + "): " + why);
    };
    if (archive_read_open(a, &stream, nullptr, &detail::TarStream::read_callback, nullptr) !=
        ARCHIVE_OK)
        corrupt();

    detail::Budget budget(limits);
    std::set<std::string> seen;   // every entry's clean name
    std::set<std::string> files;  // regular files
    std::set<std::string> dirs;   // directories, explicit or implied by a path
    std::vector<std::string> names;
    std::vector<unsigned char> buf(kChunk);

    while (true) {
        archive_entry* ae = nullptr;
        const int rc = archive_read_next_header(a, &ae);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK) corrupt();
        ++index;
        const char* raw = archive_entry_pathname(ae);
        Entry e;
        e.name = raw ? raw : "#" + std::to_string(index);
        last = e.name;
        budget.count_entry(e.name);
        if (!raw) refuse_entry(e.name, "its name cannot be decoded");

        if (const char* target = archive_entry_hardlink(ae))
            refuse_entry(e.name, "it is a hard link (to '" + printable(target) +
                                     "'); links are not allowed");
        const auto type = archive_entry_filetype(ae);
        if (type == AE_IFLNK || archive_entry_symlink(ae) != nullptr)
            refuse_entry(e.name, "it is a symbolic link; links are not allowed");
        const char* only = "; only regular files and directories are allowed";
        switch (type) {
        case AE_IFREG:
        case AE_IFDIR: break;
        case AE_IFCHR: refuse_entry(e.name, std::string("it is a character device") + only);
        case AE_IFBLK: refuse_entry(e.name, std::string("it is a block device") + only);
        case AE_IFIFO: refuse_entry(e.name, std::string("it is a FIFO") + only);
        case AE_IFSOCK: refuse_entry(e.name, std::string("it is a socket") + only);
        default: {
            char text[48];
            std::snprintf(text, sizeof text, "its type (mode 0%o) is unknown",
                          static_cast<unsigned>(type));
            refuse_entry(e.name, text + std::string(only));
        }
        }

        e.is_dir = type == AE_IFDIR;
        e.clean = e.name;
        if (e.is_dir && !e.clean.empty() && e.clean.back() == '/') e.clean.pop_back();
        if (auto why = detail::name_problem(e.clean); !why.empty()) refuse_entry(e.name, why);
        if (!seen.insert(e.clean).second) refuse_entry(e.name, "it appears twice in the archive");

        // Every directory on the way must not be a file, and a file must not be a directory
        // another entry already implied ("d/x" then "d").
        const auto parts = split(e.clean);
        std::string prefix;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            if (i > 0) prefix += '/';
            prefix += parts[i];
            if (files.count(prefix) != 0)
                refuse_entry(e.name, "'" + printable(prefix) +
                                         "' is a file in this archive, it cannot also be a "
                                         "directory");
            dirs.insert(prefix);
        }
        if (!e.is_dir && dirs.count(e.clean) != 0)
            refuse_entry(e.name, "another entry already uses it as a directory");

        if (!archive_entry_size_is_set(ae)) refuse_entry(e.name, "its header declares no size");
        const la_int64_t declared = archive_entry_size(ae);
        if (declared < 0) refuse_entry(e.name, "its header declares a negative size");

        if (e.is_dir) {
            if (declared != 0)
                refuse_entry(e.name, "it is a directory but its header declares " +
                                         std::to_string(declared) + " bytes of data");
            dirs.insert(e.clean);
            if (sink) sink->directory(e);
            continue;
        }

        files.insert(e.clean);
        e.mode = (archive_entry_perm(ae) & 0111) != 0 ? 0755 : 0644;
        budget.begin_file(e.name, static_cast<std::uint64_t>(declared));
        if (sink) sink->begin_file(e);
        while (true) {
            // archive_read_data() also materialises sparse holes as zeros: those bytes
            // count like any others.
            const la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
            if (n == 0) break;
            if (n < 0) corrupt();
            budget.consume(e.name, static_cast<std::uint64_t>(n));
            if (sink) sink->data(e, buf.data(), static_cast<std::size_t>(n));
        }
        budget.end_file(e.name);
        if (sink) sink->end_file(e);
        names.push_back(e.clean);
    }
    reader.reset();
    stream.finish();
    return names;
}

// "<parent>/.tmp-<random>", mode 0700, removed with everything in it unless released.
class TempDir {
public:
    explicit TempDir(const fs::path& parent) {
        for (std::size_t i = 0; i < kMaxTempAttempts; ++i) {
            path_ = parent / (".tmp-" + detail::random_hex());
            if (::mkdir(path_.c_str(), 0700) == 0) return;
            if (errno != EEXIST)
                throw ArchiveError("cannot create a temporary directory in '" + parent.string() +
                                   "': " + errno_text(errno));
        }
        throw ArchiveError("cannot create a temporary directory in '" + parent.string() +
                           "': too many name collisions");
    }
    ~TempDir() {
        if (!released_) {
            std::error_code ec;
            fs::remove_all(path_, ec);  // never follows links
        }
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }
    void release() { released_ = true; }

private:
    fs::path path_;
    bool released_ = false;
};

// Writes accepted entries below `root` (the private temporary directory). Every step is
// relative to a directory descriptor and uses O_NOFOLLOW; files are created with O_EXCL.
class DiskSink final : public Sink {
public:
    explicit DiskSink(int root) : root_(root) {}

    void directory(const Entry& e) override {
        const auto parts = split(e.clean);
        open_dirs(e, parts, parts.size());
    }

    void begin_file(const Entry& e) override {
        const auto parts = split(e.clean);
        UniqueFd dir = open_dirs(e, parts, parts.size() - 1);
        const std::string leaf(parts.back());
        out_ = UniqueFd(::openat(dir.get(), leaf.c_str(),
                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, e.mode));
        if (!out_) refuse_entry(e.name, "cannot create the file: " + errno_text(errno));
        if (::fchmod(out_.get(), e.mode) != 0)  // exact mode, whatever the umask
            refuse_entry(e.name, "cannot set the file's mode: " + errno_text(errno));
    }

    void data(const Entry& e, const unsigned char* bytes, std::size_t size) override {
        if (int err = detail::write_all(out_.get(), bytes, size))
            refuse_entry(e.name, "cannot write the file: " + errno_text(err));
    }

    void end_file(const Entry& e) override {
        if (int err = out_.close(); err != 0)
            refuse_entry(e.name, "cannot close the file: " + errno_text(err));
        files_.push_back(e.clean);
    }

    // Durable before visible: every file, then every directory (deepest first), the root.
    void sync() {
        for (const auto& f : files_) sync_below(f, false);
        for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) sync_below(*it, true);
        if (::fchmod(root_, 0755) != 0 || ::fsync(root_) != 0)
            throw ArchiveError("cannot finish the extracted tree: " + errno_text(errno));
    }

private:
    // Opens parts[0..count) below the root as a directory, creating what is missing (0755).
    UniqueFd open_dirs(const Entry& e, const std::vector<std::string_view>& parts,
                       std::size_t count) {
        UniqueFd current(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
        if (!current)
            refuse_entry(e.name, "cannot open the extraction directory: " + errno_text(errno));
        std::string rel;
        for (std::size_t i = 0; i < count; ++i) {
            const std::string part(parts[i]);
            if (!rel.empty()) rel += '/';
            rel += part;
            const bool made = ::mkdirat(current.get(), part.c_str(), 0755) == 0;
            if (!made && errno != EEXIST)
                refuse_entry(e.name, "cannot create directory '" + printable(rel) +
                                         "': " + errno_text(errno));
            UniqueFd next(::openat(current.get(), part.c_str(),
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!next)
                refuse_entry(e.name, "cannot open directory '" + printable(rel) +
                                         "': " + errno_text(errno));
            if (made) {
                if (::fchmod(next.get(), 0755) != 0)
                    refuse_entry(e.name, "cannot set the mode of '" + printable(rel) +
                                             "': " + errno_text(errno));
                dirs_.insert(rel);
            }
            current = std::move(next);
        }
        return current;
    }

    void sync_below(const std::string& rel, bool dir) {
        UniqueFd fd(::openat(root_, rel.c_str(),
                             O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (dir ? O_DIRECTORY : 0)));
        if (!fd || ::fsync(fd.get()) != 0)
            throw ArchiveError("cannot sync extracted '" + printable(rel) +
                               "': " + errno_text(errno));
    }

    int root_;
    UniqueFd out_;
    std::vector<std::string> files_;
    std::set<std::string> dirs_;
};

// rename(2) that never replaces an existing target (plain rename would replace an empty
// directory).
void rename_no_replace(const fs::path& from, const fs::path& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
    int err = errno;
    if (err == EINVAL || err == ENOSYS) {  // file system without RENAME_NOREPLACE
        struct stat st {};
        if (::lstat(to.c_str(), &st) == 0)
            err = EEXIST;
        else if (::rename(from.c_str(), to.c_str()) == 0)
            return;
        else
            err = errno;
    }
    if (err == EEXIST || err == ENOTEMPTY)
        throw ArchiveError("cannot extract into '" + to.string() + "': it already exists");
    throw ArchiveError("cannot move the extracted tree to '" + to.string() +
                       "': " + errno_text(err));
}

}  // namespace

std::vector<std::string> extract_archive(std::span<const std::uint8_t> archive_bytes,
                                         const fs::path& target, const ExtractLimits& limits) {
    fs::path dest = target.has_filename() ? target : target.parent_path();
    if (dest.empty() || dest.filename() == "." || dest.filename() == "..")
        throw ArchiveError("cannot extract into '" + target.string() +
                           "': the target must name a new directory");
    std::error_code ec;
    dest = fs::absolute(dest, ec);
    if (ec) throw ArchiveError("cannot extract into '" + target.string() + "': " + ec.message());
    const fs::path parent = dest.parent_path();

    struct stat st {};
    if (::lstat(dest.c_str(), &st) == 0)
        throw ArchiveError("cannot extract into '" + dest.string() + "': it already exists");
    if (errno != ENOENT)
        throw ArchiveError("cannot extract into '" + dest.string() + "': " + errno_text(errno));
    if (archive_bytes.empty()) throw ArchiveError("archive refused: it is empty (0 bytes)");

    // Pass 1: every check, nothing written.
    walk(archive_bytes, limits, nullptr);

    // Pass 2: the same bytes, the same checks, written into a private directory.
    fs::create_directories(parent, ec);
    if (ec) throw ArchiveError("cannot create '" + parent.string() + "': " + ec.message());
    TempDir tmp(parent);
    UniqueFd root(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root)
        throw ArchiveError("cannot open '" + tmp.path().string() + "': " + errno_text(errno));
    DiskSink sink(root.get());
    auto names = walk(archive_bytes, limits, &sink);
    sink.sync();
    root.close();

    rename_no_replace(tmp.path(), dest);
    tmp.release();
    // Best effort: the tree is complete and in place; a failure here only weakens durability
    // across a crash, and reporting it as an error would contradict what is on disk.
    (void)detail::fsync_directory(parent);
    return names;
}

std::vector<std::string> extract_archive_file(const fs::path& archive, const fs::path& target,
                                              const ExtractLimits& limits) {
    const auto bytes = read_file_bytes(archive);
    return extract_archive(bytes, target, limits);
}

}  // namespace keel::market
