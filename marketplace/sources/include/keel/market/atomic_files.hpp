// Small file-system helpers for writing the store crash-safely.
#pragma once

#include <filesystem>
#include <string>

namespace keel::market {

// The whole file as text; throws std::runtime_error naming the path.
std::string read_text_file(const std::filesystem::path& path);
// Writes "<path>.tmp-<random>", fsyncs it, renames it over `path`, fsyncs the folder.
// With sync = false: the same atomic rename, without the fsyncs (for caches and records
// whose loss after a crash is harmless).
void write_file_durably(const std::filesystem::path& path, const std::string& content, bool sync = true);
// Puts the complete directory `fresh` at `target` in one step: an atomic exchange when
// `target` exists (the old content is then removed), a rename otherwise.
void replace_directory(const std::filesystem::path& fresh, const std::filesystem::path& target);
// Renames `dir` aside (atomic), then deletes it. No-op when it does not exist.
void remove_directory_atomically(const std::filesystem::path& dir);
void fsync_directory(const std::filesystem::path& dir);
// 16 random hex characters, for temporary names.
std::string random_token();

}  // namespace keel::market
