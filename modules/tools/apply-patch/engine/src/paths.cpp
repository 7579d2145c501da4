#include "paths.hpp"

#include <algorithm>
#include <string>

namespace keel::tools::patch::detail {

namespace fs = std::filesystem;

namespace {

bool is_within(const fs::path& root, const fs::path& p) {
    auto r = root.begin();
    auto q = p.begin();
    for (; r != root.end(); ++r, ++q) {
        if (r->empty()) continue;  // trailing separator of root
        if (q == p.end() || *r != *q) return false;
    }
    return true;
}

[[noreturn]] void refuse(std::string_view path, const std::string& why) {
    throw PathError("Refusing to patch '" + std::string(path) + "': " + why);
}

}  // namespace

fs::path canonical_workdir(const fs::path& workdir) {
    std::error_code ec;
    fs::path root = fs::canonical(workdir, ec);
    if (ec) throw PathError("Working directory '" + workdir.string() + "' is not usable: " + ec.message());
    if (!fs::is_directory(root, ec)) throw PathError("Working directory '" + workdir.string() + "' is not a directory");
    return root;
}

fs::path resolve_in_workdir(const fs::path& root, std::string_view path, bool keep_final_symlink) {
    if (path.empty()) refuse(path, "empty path");
    if (path.find('\0') != std::string_view::npos) refuse(path, "the path contains a NUL byte");
    const fs::path rel(path);
    if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
        refuse(path, "absolute paths are not allowed; use a path relative to the working directory");
    }
    const fs::path normal = rel.lexically_normal();
    if (normal.empty() || normal == "." || normal.filename() == "..") {
        refuse(path, "it does not name a file inside the working directory");
    }
    if (*normal.begin() == "..") refuse(path, "the path leaves the working directory");

    // symlink_status reports a missing file through its error_code; that is not an error here.
    auto is_link = [](const fs::path& p) {
        std::error_code ignored;
        return fs::is_symlink(fs::symlink_status(p, ignored));
    };
    std::error_code ec;
    const fs::path lexical = root / normal;
    fs::path resolved;
    if (keep_final_symlink && is_link(lexical)) {
        // The link itself is the target; only where it lives must be inside the workdir.
        resolved = fs::weakly_canonical(lexical.parent_path(), ec) / lexical.filename();
    } else {
        resolved = fs::weakly_canonical(lexical, ec);
        // weakly_canonical leaves a dangling symlink unresolved; follow such links by hand so a
        // link to a missing file outside the workdir cannot be written through.
        for (int hops = 0; !ec && hops < 40 && is_link(resolved); ++hops) {
            fs::path target = fs::read_symlink(resolved, ec);
            if (ec) break;
            if (target.is_relative()) target = resolved.parent_path() / target;
            resolved = fs::weakly_canonical(target, ec);
        }
    }
    if (ec) refuse(path, "cannot resolve it: " + ec.message());
    if (!is_within(root, resolved)) refuse(path, "the path leaves the working directory");
    if (resolved == root) refuse(path, "it does not name a file inside the working directory");
    return resolved;
}

}  // namespace keel::tools::patch::detail
