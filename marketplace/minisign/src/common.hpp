#pragma once

// Internal helpers shared by the keel_minisign sources (not installed, not public).

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keel::market::detail {

// sodium_init() exactly once, thread-safe; throws if libsodium cannot start.
void ensure_sodium();

std::string base64_encode(std::span<const std::uint8_t> bytes);
// Decodes standard (padded) base64 that must yield exactly out.size() bytes.
bool base64_decode_exact(std::string_view text, std::span<std::uint8_t> out);

std::string hex_lower(std::span<const std::uint8_t> bytes);

// Lines of a text file without their "\n" or "\r\n"; a final newline adds no empty line.
std::vector<std::string_view> split_lines(std::string_view text);
bool is_blank(std::string_view text);
std::string_view trim(std::string_view text);

inline constexpr std::string_view kUntrustedPrefix = "untrusted comment: ";
inline constexpr std::string_view kTrustedPrefix = "trusted comment: ";

// The base64 line of a key file: the line after "untrusted comment: ...", or the only line
// when the text is a bare base64 key. `what` names the file kind in errors.
std::string_view key_base64_line(std::string_view file_text, std::string_view what);

// Throws SignatureError unless `text` fits on one line (no control characters but tab)
// and is at most max_bytes long. `what` names it in the message ("trusted comment").
void check_one_line(std::string_view text, std::size_t max_bytes, std::string_view what);

// Whole file, refusing anything larger than max_bytes (key and signature files are small).
std::string read_small_file(const std::filesystem::path& path, std::size_t max_bytes,
                            std::string_view what);
// Calls `chunk` with successive pieces of the file; the file is never held whole.
void read_file_chunks(const std::filesystem::path& path,
                      const std::function<void(std::span<const std::uint8_t>)>& chunk);

using Blake2b512 = std::array<std::uint8_t, 64>;
Blake2b512 blake2b512(std::span<const std::uint8_t> data);
Blake2b512 blake2b512_file(const std::filesystem::path& path);

inline std::span<const std::uint8_t> bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace keel::market::detail
