// keel_archive through its real interface: real files, real gzip/tar bytes built with
// libarchive's writer (and by hand where libarchive would refuse to write the attack),
// real extraction into a temporary directory.
#include "keel/market/archive.hpp"

#include <catch2/catch.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using keel::market::ArchiveError;
using keel::market::ArchiveMember;
using keel::market::extract_archive;
using keel::market::extract_archive_file;
using keel::market::ExtractLimits;
using keel::market::read_file_bytes;
using keel::market::write_archive;
using Bytes = std::vector<std::uint8_t>;

namespace {

// A fresh directory under the system temp dir, removed afterwards.
struct Sandbox {
    fs::path dir;
    Sandbox() {
        std::string tmpl = (fs::temp_directory_path() / "keel-archive-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir = tmpl;
    }
    ~Sandbox() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;
};

void write_text(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::set<std::string> listing(const fs::path& dir) {
    std::set<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(dir))
        names.insert(fs::relative(e.path(), dir).generic_string());
    return names;
}

unsigned perm_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// archive_write_open() callback collecting the output in a Bytes.
la_ssize_t append_to(struct archive*, void* client, const void* buf, size_t n) {
    auto* out = static_cast<Bytes*>(client);
    auto* p = static_cast<const std::uint8_t*>(buf);
    out->insert(out->end(), p, p + n);
    return static_cast<la_ssize_t>(n);
}

// Builds tar archives in memory with libarchive's own writer, so the malicious entries are
// exactly what a real tool would produce.
class TarBuilder {
public:
    explicit TarBuilder(bool gzip = true) : a_(archive_write_new()) {
        if (gzip) {
            REQUIRE(archive_write_add_filter_gzip(a_) == ARCHIVE_OK);
            REQUIRE(archive_write_set_options(a_, "gzip:compression-level=1") == ARCHIVE_OK);
        }
        REQUIRE(archive_write_set_format_pax(a_) == ARCHIVE_OK);
        REQUIRE(archive_write_open(a_, &out_, nullptr, &append_to, nullptr) == ARCHIVE_OK);
    }
    ~TarBuilder() { archive_write_free(a_); }
    TarBuilder(const TarBuilder&) = delete;
    TarBuilder& operator=(const TarBuilder&) = delete;

    TarBuilder& file(const std::string& name, const std::string& data, unsigned perm = 0644) {
        archive_entry* e = start(name, AE_IFREG, perm);
        archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
        header(e);
        if (!data.empty())
            REQUIRE(archive_write_data(a_, data.data(), data.size()) ==
                    static_cast<la_ssize_t>(data.size()));
        return *this;
    }
    // `size` zero bytes, streamed in 1 MiB chunks.
    TarBuilder& zeros(const std::string& name, std::uint64_t size) {
        archive_entry* e = start(name, AE_IFREG, 0644);
        archive_entry_set_size(e, static_cast<la_int64_t>(size));
        header(e);
        std::vector<char> chunk(std::size_t{1} << 20);
        for (std::uint64_t left = size; left > 0;) {
            auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
            REQUIRE(archive_write_data(a_, chunk.data(), n) == static_cast<la_ssize_t>(n));
            left -= n;
        }
        return *this;
    }
    TarBuilder& dir(const std::string& name) {
        archive_entry* e = start(name, AE_IFDIR, 0755);
        header(e);
        return *this;
    }
    TarBuilder& symlink(const std::string& name, const std::string& target) {
        archive_entry* e = start(name, AE_IFLNK, 0777);
        archive_entry_set_symlink(e, target.c_str());
        header(e);
        return *this;
    }
    TarBuilder& hardlink(const std::string& name, const std::string& target) {
        archive_entry* e = start(name, AE_IFREG, 0644);
        archive_entry_set_hardlink(e, target.c_str());
        archive_entry_set_size(e, 0);
        header(e);
        return *this;
    }
    TarBuilder& node(const std::string& name, unsigned type, dev_t rdev = 0) {
        archive_entry* e = start(name, type, 0644);
        archive_entry_set_rdev(e, rdev);
        header(e);
        return *this;
    }
    Bytes finish() {
        REQUIRE(archive_write_close(a_) == ARCHIVE_OK);
        return out_;
    }

private:
    archive_entry* start(const std::string& name, unsigned type, unsigned perm) {
        if (!entry_) entry_.reset(archive_entry_new());
        archive_entry_clear(entry_.get());
        archive_entry_set_pathname(entry_.get(), name.c_str());
        archive_entry_set_filetype(entry_.get(), type);
        archive_entry_set_perm(entry_.get(), perm);
        return entry_.get();
    }
    void header(archive_entry* e) {
        if (archive_write_header(a_, e) != ARCHIVE_OK) FAIL(archive_error_string(a_));
    }

    struct EntryFree {
        void operator()(archive_entry* e) const { archive_entry_free(e); }
    };
    struct archive* a_;
    std::unique_ptr<archive_entry, EntryFree> entry_;
    Bytes out_;
};

// Hand-made ustar pieces, for archives libarchive's writer will not produce.
std::string ustar_header(const std::string& name, char type, std::uint64_t size) {
    std::string h(512, '\0');
    REQUIRE(name.size() <= 100);
    std::memcpy(&h[0], name.data(), name.size());
    std::snprintf(&h[100], 8, "%07o", 0644u);
    std::snprintf(&h[108], 8, "%07o", 0u);
    std::snprintf(&h[116], 8, "%07o", 0u);
    std::snprintf(&h[124], 12, "%011llo", static_cast<unsigned long long>(size));
    std::snprintf(&h[136], 12, "%011o", 0u);
    std::memset(&h[148], ' ', 8);
    h[156] = type;
    std::memcpy(&h[257], "ustar\0" "00", 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(&h[148], 8, "%06o", sum);
    h[155] = ' ';
    return h;
}

std::string pad512(std::string data) {
    data.resize((data.size() + 511) / 512 * 512, '\0');
    return data;
}

// One pax record: "<len> <key>=<value>\n", where <len> counts the whole record.
std::string pax_record(const std::string& key, const std::string& value) {
    std::size_t body = 1 + key.size() + 1 + value.size() + 1;
    std::size_t len = body + 1;
    while (std::to_string(len).size() + body != len) ++len;
    return std::to_string(len) + " " + key + "=" + value + "\n";
}

// A pax extended header ('x') carrying `records`, ready to precede the entry it describes.
std::string pax_header(const std::string& name, const std::string& records) {
    return ustar_header(name, 'x', records.size()) + pad512(records);
}

Bytes raw_tar(const std::string& blocks) {
    std::string all = blocks + std::string(1024, '\0');
    return Bytes(all.begin(), all.end());
}

// `raw` gzip-compressed, as one gzip member (libarchive's "raw" format writer).
Bytes gzip_bytes(const Bytes& raw) {
    Bytes out;
    struct archive* a = archive_write_new();
    REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
    REQUIRE(archive_write_set_format_raw(a) == ARCHIVE_OK);
    REQUIRE(archive_write_open(a, &out, nullptr, &append_to, nullptr) == ARCHIVE_OK);
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, "raw");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, static_cast<la_int64_t>(raw.size()));
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, raw.data(), raw.size()) == static_cast<la_ssize_t>(raw.size()));
    REQUIRE(archive_write_close(a) == ARCHIVE_OK);
    archive_entry_free(e);
    archive_write_free(a);
    return out;
}

struct Refusal {
    std::string message;
};

// Extracts `bytes` into <sandbox>/store/pkg and requires that it is refused, that nothing
// exists at the target, and that <sandbox> holds nothing but the empty store directory.
Refusal expect_refused(const Bytes& bytes, const std::string& expected,
                       const ExtractLimits& limits = {}) {
    Sandbox sb;
    const fs::path store = sb.dir / "store";
    fs::create_directory(store);
    const fs::path target = store / "pkg";
    Refusal r;
    try {
        extract_archive(bytes, target, limits);
        FAIL("extraction was expected to be refused (" << expected << ")");
    } catch (const ArchiveError& e) {
        r.message = e.what();
    }
    INFO("message: " << r.message);
    CHECK_THAT(r.message, Catch::Matchers::Contains(expected));
    CHECK_FALSE(fs::exists(fs::symlink_status(target)));
    CHECK(listing(sb.dir) == std::set<std::string>{"store"});
    return r;
}

}  // namespace

TEST_CASE("write_archive then extract_archive round-trips names, contents and modes") {
    Sandbox sb;
    const fs::path src = sb.dir / "src";
    write_text(src / "module.json", R"({"name":"demo","version":"1.0.0"})");
    std::string lib(1 << 20, '\0');
    std::mt19937 rng(42);
    for (auto& c : lib) c = static_cast<char>(rng());
    write_text(src / "libdemo.so", lib);
    fs::permissions(src / "libdemo.so", fs::perms(0755));
    write_text(src / "empty.txt", "");
    write_text(src / "deep" / "er" / "note.md", "# note\n");

    const fs::path pkg = sb.dir / "demo.keelpkg";
    write_archive(pkg, {{"module.json", src / "module.json"},
                        {"libdemo.so", src / "libdemo.so"},
                        {"libdemo.so.minisig", src / "empty.txt"},
                        {"docs/deep/note.md", src / "deep" / "er" / "note.md"}});
    CHECK(fs::exists(pkg));
    CHECK_FALSE(fs::exists(sb.dir / "demo.keelpkg.tmp"));

    const fs::path target = sb.dir / "modules" / "demo" / "1.0.0";
    auto names = extract_archive_file(pkg, target);
    // Sorted by name when written; returned in archive order.
    CHECK(names == std::vector<std::string>{"docs/deep/note.md", "libdemo.so",
                                            "libdemo.so.minisig", "module.json"});
    CHECK(read_text(target / "module.json") == R"({"name":"demo","version":"1.0.0"})");
    CHECK(read_text(target / "libdemo.so") == lib);
    CHECK(read_text(target / "libdemo.so.minisig").empty());
    CHECK(read_text(target / "docs" / "deep" / "note.md") == "# note\n");
    CHECK(perm_of(target / "libdemo.so") == 0755);
    CHECK(perm_of(target / "module.json") == 0644);
    CHECK(perm_of(target / "docs") == 0755);
    CHECK(perm_of(target) == 0755);
    CHECK(listing(target) == std::set<std::string>{"docs", "docs/deep", "docs/deep/note.md",
                                                   "libdemo.so", "libdemo.so.minisig",
                                                   "module.json"});
    // No temporary directory is left next to the target.
    for (const auto& e : fs::directory_iterator(target.parent_path()))
        CHECK(e.path().filename() == "1.0.0");
}

TEST_CASE("the archive is a standard gzip pax tar that GNU tar reads") {
    if (::access("/usr/bin/tar", X_OK) != 0) {
        WARN("no /usr/bin/tar; skipped");
        return;
    }
    Sandbox sb;
    write_text(sb.dir / "a.txt", "alpha\n");
    write_text(sb.dir / "run.sh", "#!/bin/sh\n");
    fs::permissions(sb.dir / "run.sh", fs::perms(0700));
    const fs::path pkg = sb.dir / "x.keelpkg";
    write_archive(pkg, {{"run.sh", sb.dir / "run.sh"}, {"sub/a.txt", sb.dir / "a.txt"}});

    const std::string cmd = "LC_ALL=C TZ=UTC /usr/bin/tar --numeric-owner -tvzf '" +
                            pkg.string() + "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    REQUIRE(::pclose(p) == 0);
    INFO(out);
    CHECK_THAT(out, Catch::Matchers::Contains("-rwxr-xr-x 0/0") &&
                        Catch::Matchers::Contains("1970-01-01 00:00 run.sh") &&
                        Catch::Matchers::Contains("-rw-r--r-- 0/0") &&
                        Catch::Matchers::Contains("sub/a.txt"));
    CHECK(out.find("run.sh") < out.find("sub/a.txt"));
}

TEST_CASE("an archive made by GNU tar extracts") {
    if (::access("/usr/bin/tar", X_OK) != 0) {
        WARN("no /usr/bin/tar; skipped");
        return;
    }
    Sandbox sb;
    write_text(sb.dir / "src" / "module.json", "{}");
    write_text(sb.dir / "src" / "lib" / "x.so", "elf");
    const fs::path tgz = sb.dir / "gnu.tgz";
    const std::string cmd = "/usr/bin/tar -czf '" + tgz.string() + "' -C '" +
                            (sb.dir / "src").string() + "' module.json lib";
    REQUIRE(std::system(cmd.c_str()) == 0);
    auto names = extract_archive_file(tgz, sb.dir / "out");
    CHECK(std::set<std::string>(names.begin(), names.end()) ==
          std::set<std::string>{"module.json", "lib/x.so"});
    CHECK(read_text(sb.dir / "out" / "lib" / "x.so") == "elf");
}

TEST_CASE("write_archive is deterministic") {
    Sandbox sb;
    write_text(sb.dir / "m.json", "{}");
    write_text(sb.dir / "lib.so", std::string(100000, 'x'));
    const std::vector<ArchiveMember> forward{{"module.json", sb.dir / "m.json"},
                                             {"lib/lib.so", sb.dir / "lib.so"}};
    const std::vector<ArchiveMember> backward{forward.rbegin(), forward.rend()};

    write_archive(sb.dir / "one.keelpkg", forward);
    // Different source times and member order must not change a byte.
    fs::last_write_time(sb.dir / "m.json",
                        fs::last_write_time(sb.dir / "m.json") - std::chrono::hours(50));
    write_archive(sb.dir / "two.keelpkg", backward);
    write_archive(sb.dir / "two.keelpkg", forward);  // replaces the existing file
    const Bytes one = read_file_bytes(sb.dir / "one.keelpkg");
    const Bytes two = read_file_bytes(sb.dir / "two.keelpkg");
    REQUIRE(one.size() > 18);
    CHECK(one == two);
    CHECK(one[0] == 0x1f);
    CHECK(one[1] == 0x8b);
    // gzip MTIME field is zero.
    CHECK((one[4] | one[5] | one[6] | one[7]) == 0);
}

TEST_CASE("write_archive refuses bad members and leaves nothing behind") {
    Sandbox sb;
    write_text(sb.dir / "f", "data");
    const fs::path out = sb.dir / "out.keelpkg";
    auto refused = [&](const std::vector<ArchiveMember>& members, const std::string& expected) {
        try {
            write_archive(out, members);
            FAIL("expected refusal: " << expected);
        } catch (const ArchiveError& e) {
            INFO(e.what());
            CHECK_THAT(std::string(e.what()), Catch::Matchers::Contains(expected));
        }
        CHECK_FALSE(fs::exists(out));
        CHECK_FALSE(fs::exists(sb.dir / "out.keelpkg.tmp"));
    };
    refused({{"../x", sb.dir / "f"}}, "'..' component");
    refused({{"/etc/x", sb.dir / "f"}}, "absolute path");
    refused({{"", sb.dir / "f"}}, "empty");
    refused({{"a//b", sb.dir / "f"}}, "empty path component");
    refused({{"a\\b", sb.dir / "f"}}, "backslash");
    refused({{"a", sb.dir / "f"}, {"a", sb.dir / "f"}}, "given twice");
    refused({{"a", sb.dir / "f"}, {"a/b", sb.dir / "f"}}, "is also a file member");
    refused({{"x", sb.dir / "missing"}}, "cannot open source");
    refused({{"x", sb.dir}}, "not a regular file");
}

TEST_CASE("path traversal and absolute names are refused") {
    Sandbox outside;  // where an escaping entry would land if it were followed
    SECTION("../x") {
        auto r = expect_refused(TarBuilder().file("ok.txt", "fine").file("../x", "evil").finish(),
                                "archive entry '../x' refused: it contains a '..' component");
    }
    SECTION("a/../../x") {
        expect_refused(TarBuilder().file("a/../../x", "evil").finish(),
                       "archive entry 'a/../../x' refused: it contains a '..' component");
    }
    SECTION("/etc/x") {
        expect_refused(TarBuilder().file("/etc/keel-archive-test-x", "evil").finish(),
                       "archive entry '/etc/keel-archive-test-x' refused: it is an absolute path");
        CHECK_FALSE(fs::exists("/etc/keel-archive-test-x"));
    }
    SECTION("absolute path into a directory we can inspect") {
        const fs::path victim = outside.dir / "victim";
        expect_refused(TarBuilder().file(victim.string(), "evil").finish(), "absolute path");
        CHECK_FALSE(fs::exists(victim));
    }
    SECTION("directory entry ..") {
        expect_refused(TarBuilder().dir("../").finish(), "'..' component");
    }
    SECTION("backslash and control characters") {
        expect_refused(TarBuilder().file("a\\..\\..\\x", "evil").finish(), "backslash");
        expect_refused(TarBuilder().file("a\nb", "evil").finish(),
                       "archive entry 'a\\x0ab' refused: it contains a control character");
        expect_refused(TarBuilder().file("./x", "evil").finish(), "'.' component");
        expect_refused(TarBuilder().file("a//x", "evil").finish(), "empty path component");
    }
    SECTION("empty name") {
        expect_refused(raw_tar(ustar_header("", '0', 0)), "the name is empty");
    }
    SECTION("NUL inside a pax path cannot smuggle a traversal") {
        // libarchive keeps the name up to the NUL ("a"); whatever it does, nothing may be
        // written outside the target.
        Sandbox sb;
        Bytes bytes = raw_tar(pax_header("PaxHeader/a",
                                         pax_record("path", std::string("a\0/../../../x", 13))) +
                              ustar_header("placeholder", '0', 4) + pad512("evil"));
        const fs::path target = sb.dir / "store" / "pkg";
        fs::create_directories(target.parent_path());
        try {
            // libarchive 3.6 ends the name at the NUL: the entry is plain "a", inside.
            CHECK(extract_archive(bytes, target) == std::vector<std::string>{"a"});
            CHECK(listing(sb.dir) ==
                  std::set<std::string>{"store", "store/pkg", "store/pkg/a"});
        } catch (const ArchiveError& e) {
            // A libarchive that refuses such a name outright is just as good.
            INFO(e.what());
            CHECK(listing(sb.dir) == std::set<std::string>{"store"});
        }
        CHECK_FALSE(fs::exists(sb.dir / "x"));
    }
}

TEST_CASE("links and special files are refused") {
    SECTION("symlink") {
        expect_refused(TarBuilder().file("a", "1").symlink("link", "/etc/passwd").finish(),
                       "archive entry 'link' refused: it is a symbolic link");
    }
    SECTION("symlink then a file through it") {
        expect_refused(TarBuilder().symlink("d", "..").file("d/x", "evil").finish(),
                       "symbolic link");
    }
    SECTION("hard link") {
        expect_refused(TarBuilder().file("a", "1").hardlink("h", "a").finish(),
                       "archive entry 'h' refused: it is a hard link");
    }
    SECTION("hard link to an outside file") {
        expect_refused(TarBuilder().hardlink("h", "/etc/passwd").finish(), "hard link");
    }
    SECTION("character device") {
        expect_refused(TarBuilder().node("null", AE_IFCHR, makedev(1, 3)).finish(),
                       "archive entry 'null' refused: it is a character device");
    }
    SECTION("block device") {
        expect_refused(TarBuilder().node("sda", AE_IFBLK, makedev(8, 0)).finish(),
                       "it is a block device");
    }
    SECTION("FIFO") {
        expect_refused(TarBuilder().node("pipe", AE_IFIFO).finish(),
                       "archive entry 'pipe' refused: it is a FIFO");
    }
}

TEST_CASE("duplicates and file/directory clashes are refused") {
    SECTION("same file twice") {
        expect_refused(TarBuilder().file("a.txt", "1").file("a.txt", "2").finish(),
                       "archive entry 'a.txt' refused: it appears twice in the archive");
    }
    SECTION("directory twice") {
        expect_refused(TarBuilder().dir("d/").dir("d/").finish(), "appears twice");
    }
    SECTION("file and directory of the same name") {
        expect_refused(TarBuilder().file("d", "1").dir("d/").finish(), "appears twice");
    }
    SECTION("a file used as a directory") {
        expect_refused(TarBuilder().file("d", "1").file("d/x", "2").finish(),
                       "'d' is a file in this archive");
    }
    SECTION("a directory overwritten by a file") {
        expect_refused(TarBuilder().file("d/x", "1").file("d", "2").finish(),
                       "archive entry 'd' refused");
    }
}

TEST_CASE("the entry count is capped") {
    TarBuilder b;
    char name[32];
    for (int i = 0; i < 100000; ++i) {
        std::snprintf(name, sizeof name, "f%06d", i);
        b.file(name, "");
    }
    const Bytes bytes = b.finish();
    const auto start = std::chrono::steady_clock::now();
    expect_refused(bytes, "archive entry 'f001000' refused: the archive has more than 1000 entries");
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < std::chrono::seconds(2));
}

TEST_CASE("sizes are capped: header declarations and streamed data") {
    SECTION("300 MiB of zeros compressing small is refused at once") {
        const Bytes bomb = TarBuilder().file("module.json", "{}").zeros("lib.so", 300ull << 20).finish();
        CHECK(bomb.size() < (4u << 20));  // a real zip bomb: small on the wire
        const auto start = std::chrono::steady_clock::now();
        expect_refused(bomb, "archive entry 'lib.so' refused: its header declares 314572800 bytes, "
                             "over the per-entry limit of 134217728 bytes");
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    }
    SECTION("per-entry limit") {
        ExtractLimits limits;
        limits.max_entry_bytes = 1000;
        expect_refused(TarBuilder().file("big", std::string(1001, 'b')).finish(),
                       "over the per-entry limit of 1000 bytes", limits);
        // Exactly at the limit is fine.
        Sandbox sb;
        CHECK_NOTHROW(extract_archive(TarBuilder().file("big", std::string(1000, 'b')).finish(),
                                      sb.dir / "ok", limits));
    }
    SECTION("total limit") {
        ExtractLimits limits;
        limits.max_total_bytes = 2500;
        expect_refused(TarBuilder()
                           .file("a", std::string(1000, 'a'))
                           .file("b", std::string(1000, 'b'))
                           .file("c", std::string(1000, 'c'))
                           .finish(),
                       "archive entry 'c' refused: its header declares 1000 bytes, which would "
                       "take the archive over the total limit of 2500 bytes",
                       limits);
    }
    SECTION("a sparse entry whose data grows past its declared size") {
        // pax GNU sparse 1.0: the header declares a 10-byte file, but the sparse map in the
        // data puts a block at 1 GiB, so the reader would produce ~1 GiB of zeros. The
        // byte count while streaming stops it long before that.
        const std::string pax = pax_header("PaxHeader/sparse.bin",
                                           pax_record("GNU.sparse.major", "1") +
                                               pax_record("GNU.sparse.minor", "0") +
                                               pax_record("GNU.sparse.name", "sparse.bin") +
                                               pax_record("GNU.sparse.realsize", "10"));
        const std::string data = pad512("1\n1073741824\n512\n") + std::string(512, 'A');
        const Bytes bytes = raw_tar(pax +
                                    ustar_header("GNUSparseFile.0/sparse.bin", '0', data.size()) +
                                    data);
        const auto start = std::chrono::steady_clock::now();
        expect_refused(bytes, "archive entry 'sparse.bin' refused: it holds more data than the "
                              "10 bytes its header declares");
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
    }
    SECTION("a header that claims less data than follows") {
        // 10 bytes declared, 4 KiB of non-zero data follow: the surplus is not a header.
        const Bytes bytes = raw_tar(ustar_header("small.txt", '0', 10) + std::string(4096, 'Z'));
        expect_refused(bytes, "archive refused (in or after entry 'small.txt'): it is corrupt or "
                              "truncated: Damaged tar archive");
    }
    SECTION("an oversized special header is refused") {
        // A pax global header ('g') holding 64 MiB of junk: not an entry, nothing to write.
        std::string junk(64u << 20, 'j');
        const std::string tar = ustar_header("pax_global_header", 'g', junk.size()) + junk +
                                ustar_header("a.txt", '0', 1) + pad512("a");
        const Bytes bytes = gzip_bytes(raw_tar(tar));
        junk.clear();
        expect_refused(bytes, "archive refused (at its start): it is corrupt or truncated");
    }
    SECTION("data past the end-of-archive marker still counts: the tar stream is bounded") {
        // A valid tar, then 64 MiB of zeros inside the same gzip stream: the tar reader
        // stops at its end marker, and verifying the gzip trailer means inflating the rest,
        // which is cut off at the stream bound (limits + per-entry overhead).
        ExtractLimits limits;
        limits.max_total_bytes = 1000;
        limits.max_entries = 2;
        Bytes tar = raw_tar(ustar_header("a.txt", '0', 1) + pad512("a"));
        tar.resize(tar.size() + (64u << 20), 0);
        const Bytes bytes = gzip_bytes(tar);
        CHECK(bytes.size() < (1u << 20));
        expect_refused(bytes, "the tar data inflates to more than 1082344 bytes", limits);
    }
    SECTION("a directory entry carrying data") {
        // libarchive treats the size of a directory as 0, so the data is read as a header.
        const Bytes bytes = raw_tar(ustar_header("d/", '5', 512) + std::string(512, 'D'));
        expect_refused(bytes, "(in or after entry 'd/')");
    }
}

TEST_CASE("corrupt and truncated archives are refused") {
    Sandbox sb;
    write_text(sb.dir / "m.json", "{}");
    std::string big(200000, '\0');
    std::mt19937 rng(7);
    for (auto& c : big) c = static_cast<char>(rng());
    write_text(sb.dir / "lib.so", big);
    write_archive(sb.dir / "p.keelpkg", {{"module.json", sb.dir / "m.json"},
                                         {"lib.so", sb.dir / "lib.so"}});
    const Bytes good = read_file_bytes(sb.dir / "p.keelpkg");

    SECTION("truncated to half") {
        Bytes half(good.begin(), good.begin() + static_cast<long>(good.size() / 2));
        expect_refused(half, "archive refused (in or after entry 'lib.so'): the gzip data is "
                             "truncated");
    }
    SECTION("truncated by a few bytes (gzip trailer missing)") {
        Bytes cut(good.begin(), good.end() - 6);
        expect_refused(cut, "refused");
    }
    SECTION("a flipped byte in the compressed data") {
        // Lands in a stored (incompressible) block: only the CRC-32 can notice.
        Bytes bad = good;
        bad[bad.size() / 2] ^= 0x55;
        expect_refused(bad, "the gzip data is corrupt: incorrect data check");
    }
    SECTION("a flipped byte in the gzip trailer's CRC-32") {
        Bytes bad = good;
        bad[bad.size() - 8] ^= 0x01;
        expect_refused(bad, "the gzip data is corrupt: incorrect data check");
    }
    SECTION("a wrong length in the gzip trailer") {
        Bytes bad = good;
        bad[bad.size() - 4] ^= 0x01;
        expect_refused(bad, "the gzip data is corrupt: incorrect length check");
    }
    SECTION("zero padding after the gzip stream is accepted (gzip(1) ignores it too)") {
        Bytes padded = good;
        padded.resize(padded.size() + 10240, 0);
        Sandbox ok;
        CHECK(extract_archive(padded, ok.dir / "t").size() == 2);
    }
    SECTION("junk after the gzip stream") {
        Bytes bad = good;
        for (char c : std::string("hidden payload")) bad.push_back(static_cast<std::uint8_t>(c));
        expect_refused(bad, "unexpected data after the end of the gzip stream");
    }
    SECTION("a flipped byte in the first gzip header bytes") {
        Bytes bad = good;
        bad[3] = 0xff;  // reserved FLG bits
        expect_refused(bad, "archive refused");
    }
    SECTION("not an archive at all") {
        const std::string junk = "this is not an archive, just text that goes on for a while";
        expect_refused(Bytes(junk.begin(), junk.end()), "archive refused");
    }
    SECTION("empty input") {
        expect_refused(Bytes{}, "archive refused: it is empty");
    }
}

TEST_CASE("a failure while writing removes the partial tree") {
    // The archive is valid, so it passes the checking walk; writing then fails part-way
    // (file size limit), and the temporary directory must go with everything in it.
    const Bytes bytes = TarBuilder()
                            .file("a.txt", "small")
                            .file("lib/b.txt", "small too")
                            .file("lib/big.so", std::string(1 << 20, 'x'))
                            .finish();
    Sandbox sb;
    const fs::path target = sb.dir / "pkg";
    struct rlimit old {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old;
    small.rlim_cur = 64 << 10;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string message;
    try {
        extract_archive(bytes, target);
    } catch (const ArchiveError& e) {
        message = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    CHECK_THAT(message, Catch::Matchers::Contains(
                            "archive entry 'lib/big.so' refused: cannot write the file"));
    CHECK_FALSE(fs::exists(target));
    CHECK(listing(sb.dir).empty());
}

TEST_CASE("an existing target is never replaced") {
    Sandbox sb;
    const Bytes bytes = TarBuilder().file("module.json", "{}").finish();
    const fs::path target = sb.dir / "pkg";

    SECTION("existing empty directory") {
        fs::create_directory(target);
        CHECK_THROWS_WITH(extract_archive(bytes, target), Catch::Matchers::Contains("already exists"));
        CHECK(fs::is_empty(target));
    }
    SECTION("existing file") {
        write_text(target, "keep me");
        CHECK_THROWS_WITH(extract_archive(bytes, target), Catch::Matchers::Contains("already exists"));
        CHECK(read_text(target) == "keep me");
    }
    SECTION("dangling symlink") {
        fs::create_symlink(sb.dir / "nowhere", target);
        CHECK_THROWS_WITH(extract_archive(bytes, target), Catch::Matchers::Contains("already exists"));
        CHECK(fs::is_symlink(target));
        CHECK_FALSE(fs::exists(sb.dir / "nowhere"));
    }
    // Nothing but the pre-existing target is left in the parent.
    for (const auto& e : fs::directory_iterator(sb.dir))
        CHECK(e.path().filename() == "pkg");

    SECTION("a second extraction to the same place fails and leaves the first intact") {
        extract_archive(bytes, target);
        CHECK_THROWS_AS(extract_archive(bytes, target), ArchiveError);
        CHECK(read_text(target / "module.json") == "{}");
        CHECK(listing(sb.dir) == std::set<std::string>{"pkg", "pkg/module.json"});
    }
}

TEST_CASE("extraction tolerates what honest archives contain") {
    Sandbox sb;
    SECTION("explicit directory entries, before or after their files, and an empty dir") {
        const Bytes bytes =
            TarBuilder().dir("lib/").file("lib/a.so", "a").file("share/b", "b").dir("share/").dir("empty/").finish();
        auto names = extract_archive(bytes, sb.dir / "t");
        CHECK(names == std::vector<std::string>{"lib/a.so", "share/b"});
        CHECK(fs::is_directory(sb.dir / "t" / "empty"));
        CHECK(perm_of(sb.dir / "t" / "empty") == 0755);
    }
    SECTION("set-id and odd permission bits are not applied") {
        const Bytes bytes = TarBuilder().file("suid", "x", 04777).file("ro", "y", 0400).finish();
        extract_archive(bytes, sb.dir / "t");
        CHECK(perm_of(sb.dir / "t" / "suid") == 0755);
        CHECK(perm_of(sb.dir / "t" / "ro") == 0644);
    }
    SECTION("a target whose parent does not exist yet") {
        const Bytes bytes = TarBuilder().file("x", "1").finish();
        extract_archive(bytes, sb.dir / "a" / "b" / "t");
        CHECK(read_text(sb.dir / "a" / "b" / "t" / "x") == "1");
    }
    SECTION("an uncompressed tar") {
        const Bytes bytes = TarBuilder(false).file("x", "1").finish();
        CHECK(extract_archive(bytes, sb.dir / "t") == std::vector<std::string>{"x"});
    }
}
