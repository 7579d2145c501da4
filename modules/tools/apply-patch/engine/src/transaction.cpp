#include "transaction.hpp"

#include <atomic>
#include <cerrno>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace keel::tools::patch::detail {

namespace fs = std::filesystem;

namespace {

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// A name beside `target` that nothing else uses: .<name>.keel-<tag>-<pid>-<n>
fs::path sibling_name(const fs::path& target, const char* tag) {
    static std::atomic<unsigned long> counter{0};
    return target.parent_path() /
           ("." + target.filename().string() + ".keel-" + tag + "-" + std::to_string(::getpid()) +
            "-" + std::to_string(counter.fetch_add(1)));
}

void write_all(int fd, const std::string& data, const fs::path& path) {
    std::size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw CommitError("Failed to write " + path.string() + ": " + errno_text(errno));
        }
        off += static_cast<std::size_t>(n);
    }
}

// Creates a temp file beside `target` holding `contents` (with the target's permissions when
// it exists). Returns its path.
fs::path stage_file(const fs::path& target, const std::string& contents, bool existed) {
    fs::path tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
        tmp = sibling_name(target, "tmp");
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        throw CommitError("Failed to create a temporary file in " + target.parent_path().string() +
                          ": " + errno_text(errno));
    }
    try {
        write_all(fd, contents, target);
        if (existed) {
            struct stat st {};
            if (::stat(target.c_str(), &st) == 0) ::fchmod(fd, st.st_mode & 07777);
        }
        if (::fsync(fd) != 0) throw CommitError("Failed to sync " + tmp.string() + ": " + errno_text(errno));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw CommitError("Failed to write " + target.string() + ": " + errno_text(err));
    }
    return tmp;
}

struct Step {
    const PlannedWrite* write;
    fs::path temp;    // staged contents (writes only)
    fs::path backup;  // the previous file, kept until the commit is complete
    bool backup_is_link = false;  // backup is a hard link (target still in place)
    bool backed_up = false;
    bool done = false;            // the target now has its new state
};

}  // namespace

void commit_writes(const std::vector<PlannedWrite>& writes, std::optional<std::size_t> fail_at) {
    std::vector<Step> steps;
    steps.reserve(writes.size());
    std::vector<fs::path> created_dirs;  // outermost first

    auto cleanup_staging = [&] {
        for (auto& s : steps) {
            if (!s.temp.empty()) ::unlink(s.temp.c_str());
        }
        for (auto it = created_dirs.rbegin(); it != created_dirs.rend(); ++it) {
            std::error_code ec;
            fs::remove(*it, ec);  // only succeeds when empty
        }
    };

    // 1. Stage: parent directories and temp files. Nothing visible changes yet.
    try {
        for (const auto& w : writes) {
            Step s{&w, {}, {}, false, false, false};
            if (w.contents) {
                const fs::path parent = w.target.parent_path();
                std::error_code ec;
                if (!fs::is_directory(parent, ec)) {
                    std::vector<fs::path> missing;
                    for (fs::path p = parent; !p.empty() && !fs::exists(fs::symlink_status(p, ec));
                         p = p.parent_path()) {
                        missing.push_back(p);
                        if (p == p.parent_path()) break;
                    }
                    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
                        if (!fs::create_directory(*it, ec) || ec) {
                            throw CommitError("Failed to create directory " + it->string() + ": " +
                                              (ec ? ec.message() : std::string("already exists")));
                        }
                        created_dirs.push_back(*it);
                    }
                    if (!fs::is_directory(parent, ec)) {
                        throw CommitError("Failed to create " + w.target.string() + ": " +
                                          parent.string() + " is not a directory");
                    }
                }
                s.temp = stage_file(w.target, *w.contents, w.existed);
            }
            steps.push_back(std::move(s));
        }
    } catch (...) {
        cleanup_staging();
        throw;
    }

    // 2. Commit: one rename per file (plus a backup of what it replaces).
    std::size_t step_no = 0;
    auto check_fault = [&] {
        if (fail_at && *fail_at == step_no) throw CommitError("injected commit failure");
        ++step_no;
    };
    auto rollback = [&] {
        for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
            Step& s = *it;
            if (s.backed_up && s.backup_is_link && !s.done) {
                // The target is still the old file; the backup is just a second name for it
                // (and rename() between two links to one file would do nothing).
                ::unlink(s.backup.c_str());
            } else if (s.backed_up) {
                // The target was replaced or moved away: renaming the backup back restores it.
                ::rename(s.backup.c_str(), s.write->target.c_str());
            } else if (s.done && s.write->contents && !s.write->existed) {
                ::unlink(s.write->target.c_str());
            }
        }
        cleanup_staging();
    };

    try {
        for (auto& s : steps) {
            const PlannedWrite& w = *s.write;
            if (w.existed) {
                check_fault();
                s.backup = sibling_name(w.target, "bak");
                if (w.contents && ::link(w.target.c_str(), s.backup.c_str()) == 0) {
                    s.backup_is_link = true;
                } else if (::rename(w.target.c_str(), s.backup.c_str()) != 0) {
                    throw CommitError("Failed to replace " + w.target.string() + ": " + errno_text(errno));
                }
                s.backed_up = true;
            }
            if (w.contents) {
                check_fault();
                if (::rename(s.temp.c_str(), w.target.c_str()) != 0) {
                    throw CommitError("Failed to write " + w.target.string() + ": " + errno_text(errno));
                }
                s.temp.clear();
            }
            s.done = true;
        }
    } catch (const CommitError& e) {
        rollback();
        throw CommitError(std::string(e.what()) + "; no file was changed");
    }

    // 3. Done: drop the backups.
    for (auto& s : steps) {
        if (s.backed_up) ::unlink(s.backup.c_str());
    }
}

}  // namespace keel::tools::patch::detail
