// Confining patch paths to the working directory.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string_view>

namespace keel::tools::patch::detail {

class PathError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The canonical form of an existing working directory. Throws PathError.
std::filesystem::path canonical_workdir(const std::filesystem::path& workdir);

// Resolves a patch path against the canonical workdir `root`: relative only, and after
// resolving `..` and every symlink (including a dangling final one) it must stay inside
// `root`. With `keep_final_symlink`, a final component that is a symlink is returned as the
// link itself (for deleting the link rather than its target). Throws PathError.
std::filesystem::path resolve_in_workdir(const std::filesystem::path& root, std::string_view path,
                                         bool keep_final_symlink);

}  // namespace keel::tools::patch::detail
