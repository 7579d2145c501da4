// Applier: computes every file's new contents in memory (an overlay over the disk, so later
// actions see earlier ones), then hands the net changes to the transaction to write.
#include <keel/tools/apply_patch.hpp>

#include "paths.hpp"
#include "transaction.hpp"
#include "update.hpp"

#include <fstream>
#include <map>
#include <sstream>

namespace keel::tools::patch {

namespace fs = std::filesystem;

namespace {

class ApplyFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class DiskKind { Missing, File, Symlink, Directory, Other };

struct Entry {
    DiskKind kind = DiskKind::Missing;
    std::string original;  // contents on disk (File/Symlink)
    bool exists = false;   // staged state
    std::string contents;
};

std::string read_file(const fs::path& path, const std::string& display) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ApplyFailure("Failed to read " + display + ": cannot open it");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw ApplyFailure("Failed to read " + display);
    return std::move(ss).str();
}

class Overlay {
public:
    Entry& at(const fs::path& abs, const std::string& display) {
        auto it = entries_.find(abs);
        if (it != entries_.end()) return it->second;
        Entry e;
        std::error_code ec;
        const fs::file_status st = fs::symlink_status(abs, ec);
        if (ec && ec != std::errc::no_such_file_or_directory) {
            throw ApplyFailure("Failed to inspect " + display + ": " + ec.message());
        }
        switch (st.type()) {
            case fs::file_type::not_found: e.kind = DiskKind::Missing; break;
            case fs::file_type::regular: e.kind = DiskKind::File; break;
            case fs::file_type::symlink: e.kind = DiskKind::Symlink; break;
            case fs::file_type::directory: e.kind = DiskKind::Directory; break;
            default: e.kind = DiskKind::Other; break;
        }
        if (e.kind == DiskKind::File) e.original = read_file(abs, display);
        if (e.kind == DiskKind::Symlink) {
            // Only a link being deleted is keyed by its own path; show its target's text if any.
            std::ifstream in(abs, std::ios::binary);
            if (in) {
                std::ostringstream ss;
                ss << in.rdbuf();
                e.original = std::move(ss).str();
            }
        }
        e.exists = e.kind == DiskKind::File || e.kind == DiskKind::Symlink;
        e.contents = e.original;
        order_.push_back(abs);
        return entries_.emplace(abs, std::move(e)).first->second;
    }

    std::vector<detail::PlannedWrite> net_changes() const {
        std::vector<detail::PlannedWrite> out;
        for (const auto& abs : order_) {
            const Entry& e = entries_.at(abs);
            const bool existed = e.kind == DiskKind::File || e.kind == DiskKind::Symlink;
            if (e.exists == existed && (!e.exists || e.contents == e.original)) continue;
            out.push_back({abs, e.exists ? std::optional<std::string>(e.contents) : std::nullopt, existed});
        }
        return out;
    }

private:
    std::map<fs::path, Entry> entries_;
    std::vector<fs::path> order_;
};

void require_writable_slot(const Entry& e, const std::string& what, const std::string& display) {
    if (e.kind == DiskKind::Directory && !e.exists) {
        throw ApplyFailure("Failed to " + what + " " + display + ": it is a directory");
    }
    if (e.kind == DiskKind::Other) {
        throw ApplyFailure("Failed to " + what + " " + display + ": it is not a regular file");
    }
}

void require_existing_file(const Entry& e, const std::string& what, const std::string& display) {
    require_writable_slot(e, what, display);
    if (!e.exists) throw ApplyFailure("Failed to " + what + " " + display + ": the file does not exist");
}

std::optional<std::string> state_of(const Entry& e) {
    return e.exists ? std::optional<std::string>(e.contents) : std::nullopt;
}

ApplyResult failure(std::string message) {
    ApplyResult r;
    r.success = false;
    r.output = std::move(message);
    return r;
}

std::string summary(const std::vector<FileChange>& changes) {
    std::string out = "Success. Updated the following files:\n";
    for (const auto& c : changes) {
        if (c.kind == ChangeKind::Add) out += "A " + c.path + "\n";
    }
    for (const auto& c : changes) {
        if (c.kind == ChangeKind::Update || c.kind == ChangeKind::Move) out += "M " + c.path + "\n";
    }
    for (const auto& c : changes) {
        if (c.kind == ChangeKind::Delete) out += "D " + c.path + "\n";
    }
    return out;
}

ApplyResult apply_checked(const ParsedPatch& patch, const fs::path& workdir, const ApplyOptions& options) {
    if (patch.actions.empty()) return failure("No files were modified.");
    const fs::path root = detail::canonical_workdir(workdir);

    Overlay overlay;
    std::vector<FileChange> changes;
    for (const FileAction& a : patch.actions) {
        switch (a.kind) {
            case ActionKind::Add: {
                Entry& e = overlay.at(detail::resolve_in_workdir(root, a.path, false), a.path);
                require_writable_slot(e, "add", a.path);
                const auto before = state_of(e);
                e.exists = true;
                e.contents = a.contents;
                changes.push_back({a.path, ChangeKind::Add, std::nullopt,
                                   unified_diff({a.path, before}, {a.path, e.contents})});
                break;
            }
            case ActionKind::Delete: {
                Entry& e = overlay.at(detail::resolve_in_workdir(root, a.path, true), a.path);
                require_existing_file(e, "delete", a.path);
                const auto before = state_of(e);
                e.exists = false;
                e.contents.clear();
                changes.push_back({a.path, ChangeKind::Delete, std::nullopt,
                                   unified_diff({a.path, before}, {a.path, std::nullopt})});
                break;
            }
            case ActionKind::Update: {
                const fs::path src_abs = detail::resolve_in_workdir(root, a.path, false);
                Entry& src = overlay.at(src_abs, a.path);
                require_existing_file(src, "update", a.path);
                const std::string before = src.contents;
                std::string after = a.chunks.empty() ? before : detail::apply_chunks(before, a.chunks, a.path);
                if (!a.move_to) {
                    src.contents = after;
                    changes.push_back({a.path, ChangeKind::Update, std::nullopt,
                                       unified_diff(a.path, before, after)});
                    break;
                }
                const fs::path dst_abs = detail::resolve_in_workdir(root, *a.move_to, false);
                Entry& dst = overlay.at(dst_abs, *a.move_to);
                require_writable_slot(dst, "move to", *a.move_to);
                if (dst_abs != src_abs) {
                    src.exists = false;
                    src.contents.clear();
                }
                dst.exists = true;
                dst.contents = after;
                changes.push_back({*a.move_to, ChangeKind::Move, a.path,
                                   unified_diff({a.path, before}, {*a.move_to, after})});
                break;
            }
        }
    }

    if (!options.dry_run) detail::commit_writes(overlay.net_changes(), options.testing_fail_commit_at);

    ApplyResult r;
    r.success = true;
    r.output = summary(changes);
    for (const auto& c : changes) r.unified_diff += c.unified_diff;
    r.changes = std::move(changes);
    return r;
}

}  // namespace

ApplyResult apply_patch(const ParsedPatch& patch, const fs::path& workdir, const ApplyOptions& options) {
    try {
        return apply_checked(patch, workdir, options);
    } catch (const std::bad_alloc&) {
        return failure("apply_patch failed: out of memory; no file was changed");
    } catch (const std::exception& e) {
        // PathError, HunkFailure, CommitError, ApplyFailure: already worded for the model.
        return failure(e.what());
    }
}

ApplyResult apply_patch(std::string_view text, const fs::path& workdir, const ApplyOptions& options) {
    try {
        return apply_patch(parse_patch(text), workdir, options);
    } catch (const PatchError& e) {
        return failure(e.what());
    } catch (const std::exception& e) {
        return failure(std::string("apply_patch failed: ") + e.what());
    }
}

}  // namespace keel::tools::patch
