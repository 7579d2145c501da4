// Writing a set of file changes all-or-nothing: stage every new content in a temp file beside
// its target, then commit by renames; a failure during the commit rolls back what was done.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::tools::patch::detail {

struct PlannedWrite {
    std::filesystem::path target;        // absolute
    std::optional<std::string> contents; // nullopt: delete the target
    bool existed = false;                // the target exists now (to be replaced or deleted)
};

class CommitError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Applies every write or none. New files get default permissions, replaced files keep theirs,
// missing parent directories are created (and removed again on failure). `fail_at` injects a
// failure before the Nth commit step (tests only). Throws CommitError.
void commit_writes(const std::vector<PlannedWrite>& writes, std::optional<std::size_t> fail_at);

}  // namespace keel::tools::patch::detail
