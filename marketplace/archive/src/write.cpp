// Writing: deterministic gzip-compressed pax tars of regular files.
#include "archive_internal.hpp"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace keel::market {

namespace {

using detail::errno_text;
using detail::printable;
using detail::UniqueFd;

struct WriterDeleter {
    void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using Writer = std::unique_ptr<struct archive, WriterDeleter>;
using Entry = std::unique_ptr<archive_entry, EntryDeleter>;

[[noreturn]] void fail_member(const ArchiveMember& m, const std::string& why) {
    throw ArchiveError("archive member '" + printable(m.name) + "' (from '" +
                       m.source.string() + "'): " + why);
}

std::string archive_text(struct archive* a) {
    const char* s = archive_error_string(a);
    return s ? s : "unknown libarchive error";
}

// Removes "<out>.tmp" unless the write completed.
class TempFileGuard {
public:
    explicit TempFileGuard(std::filesystem::path p) : path_(std::move(p)) {}
    ~TempFileGuard() {
        if (!done_) ::unlink(path_.c_str());
    }
    TempFileGuard(const TempFileGuard&) = delete;
    TempFileGuard& operator=(const TempFileGuard&) = delete;
    void done() { done_ = true; }

private:
    std::filesystem::path path_;
    bool done_ = false;
};

void write_member(struct archive* a, const ArchiveMember& m) {
    UniqueFd src(::open(m.source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!src) fail_member(m, "cannot open source: " + errno_text(errno));
    struct stat st {};
    if (::fstat(src.get(), &st) != 0) fail_member(m, "cannot stat source: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) fail_member(m, "source is not a regular file");

    const auto size = static_cast<std::uint64_t>(st.st_size);
    Entry entry(archive_entry_new());
    if (!entry) throw ArchiveError("out of memory creating an archive entry");
    archive_entry_set_pathname(entry.get(), m.name.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), (st.st_mode & 0111) != 0 ? 0755 : 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK)
        fail_member(m, "cannot write header: " + archive_text(a));

    std::uint64_t copied = 0;
    std::vector<unsigned char> buf(std::size_t{1} << 16);
    while (true) {
        ssize_t n = ::read(src.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            fail_member(m, "cannot read source: " + errno_text(errno));
        }
        if (n == 0) break;
        copied += static_cast<std::uint64_t>(n);
        if (copied > size) fail_member(m, "source grew while it was being archived");
        la_ssize_t w = archive_write_data(a, buf.data(), static_cast<std::size_t>(n));
        if (w != n) fail_member(m, "cannot write data: " + archive_text(a));
    }
    if (copied != size) fail_member(m, "source shrank while it was being archived");
    if (archive_write_finish_entry(a) != ARCHIVE_OK)
        fail_member(m, "cannot finish entry: " + archive_text(a));
}

}  // namespace

void write_archive(const std::filesystem::path& out, const std::vector<ArchiveMember>& members) {
    // Sorted by name so the bytes depend only on names and contents, never on input order.
    std::vector<const ArchiveMember*> sorted;
    sorted.reserve(members.size());
    for (const auto& m : members) sorted.push_back(&m);
    std::sort(sorted.begin(), sorted.end(),
              [](const ArchiveMember* a, const ArchiveMember* b) { return a->name < b->name; });
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        const ArchiveMember& m = *sorted[i];
        if (auto why = detail::name_problem(m.name); !why.empty())
            fail_member(m, "unacceptable name: " + why);
        if (i > 0 && sorted[i - 1]->name == m.name) fail_member(m, "name given twice");
        names.insert(m.name);
    }
    // A member may not also be the directory of another member ("a" and "a/b").
    for (const ArchiveMember* m : sorted) {
        std::string_view name = m->name;
        for (auto slash = name.find('/'); slash != std::string_view::npos;
             slash = name.find('/', slash + 1)) {
            if (names.count(name.substr(0, slash)) != 0)
                fail_member(*m, "its directory '" + printable(name.substr(0, slash)) +
                                    "' is also a file member");
        }
    }

    std::filesystem::path tmp = out;
    tmp += ".tmp";
    auto fail = [&](const std::string& why) -> void {
        throw ArchiveError("cannot write archive '" + out.string() + "': " + why);
    };

    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) fail("cannot create '" + tmp.string() + "': " + errno_text(errno));
    TempFileGuard guard(tmp);

    {
        Writer a(archive_write_new());
        if (!a) fail("out of memory creating an archive writer");
        if (archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
            archive_write_set_format_pax(a.get()) != ARCHIVE_OK ||
            // No timestamp in the gzip header: identical inputs give identical bytes.
            archive_write_set_options(a.get(), "gzip:!timestamp") != ARCHIVE_OK ||
            // End the file with the gzip trailer, no zero padding to a 10 KiB block.
            archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
            archive_write_open_fd(a.get(), fd.get()) != ARCHIVE_OK)
            fail("cannot set up the writer: " + archive_text(a.get()));
        for (const ArchiveMember* m : sorted) write_member(a.get(), *m);
        if (archive_write_close(a.get()) != ARCHIVE_OK)
            fail("cannot finish the archive: " + archive_text(a.get()));
    }

    if (::fsync(fd.get()) != 0) fail("cannot sync '" + tmp.string() + "': " + errno_text(errno));
    if (int err = fd.close(); err != 0)
        fail("cannot close '" + tmp.string() + "': " + errno_text(err));
    if (::rename(tmp.c_str(), out.c_str()) != 0)
        fail("cannot rename '" + tmp.string() + "' into place: " + errno_text(errno));
    guard.done();
    auto parent = out.parent_path();
    // Best effort: the archive is complete and in place (see extract.cpp).
    (void)detail::fsync_directory(parent.empty() ? "." : parent);
}

}  // namespace keel::market
