// Applying an Update's hunks to a file's contents, in memory.
#pragma once

#include <keel/tools/apply_patch.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::tools::patch::detail {

// A hunk that does not apply; what() is the message for the model.
class HunkFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Returns `original` with `chunks` applied. Line endings are preserved per line (new lines
// get the file's dominant ending), as is the absence of a final newline. Context lines keep
// the file's own text even when they matched only tolerantly. Throws HunkFailure naming
// `display_path` and the 1-based hunk number.
std::string apply_chunks(std::string_view original, const std::vector<UpdateChunk>& chunks,
                         std::string_view display_path);

}  // namespace keel::tools::patch::detail
