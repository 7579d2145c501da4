#include "common.hpp"

#include <sodium.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "keel/market/signature_error.hpp"

namespace keel::market::detail {

void ensure_sodium() {
  static const int status = sodium_init();  // 0 = initialised, 1 = already initialised
  if (status < 0) throw SignatureError("libsodium failed to initialise");
}

std::string base64_encode(std::span<const std::uint8_t> bytes) {
  const auto variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), variant);
  out.resize(std::strlen(out.c_str()));  // drop the terminating NUL the length counted
  return out;
}

bool base64_decode_exact(std::string_view text, std::span<std::uint8_t> out) {
  // The decoder may write up to 3/4 of the input; decode into scratch, then check the size.
  std::vector<std::uint8_t> scratch(text.size() / 4 * 3 + 3);
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(scratch.data(), scratch.size(), text.data(), text.size(), nullptr, &len,
                        &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size() || len != out.size()) {
    sodium_memzero(scratch.data(), scratch.size());
    return false;
  }
  std::memcpy(out.data(), scratch.data(), len);
  sodium_memzero(scratch.data(), scratch.size());
  return true;
}

std::string hex_lower(std::span<const std::uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

bool is_blank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string_view key_base64_line(std::string_view file_text, std::string_view what) {
  std::vector<std::string_view> lines;
  for (auto line : split_lines(file_text)) {
    if (!is_blank(line)) lines.push_back(trim(line));
  }
  if (lines.empty()) throw SignatureError(std::string(what) + " is empty");
  std::size_t key_line = 0;
  if (lines[0].starts_with("untrusted comment:")) {
    if (lines.size() < 2) {
      throw SignatureError(std::string(what) + " has a comment line but no key line");
    }
    key_line = 1;
  }
  if (lines.size() > key_line + 1) {
    throw SignatureError(std::string(what) + " has unexpected lines after the key line");
  }
  return lines[key_line];
}

void check_one_line(std::string_view text, std::size_t max_bytes, std::string_view what) {
  if (text.size() > max_bytes) {
    throw SignatureError(std::string(what) + " is too long (" + std::to_string(text.size()) +
                         " bytes, at most " + std::to_string(max_bytes) + ")");
  }
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) {
      throw SignatureError(std::string(what) +
                           " must be a single line without control characters");
    }
  }
}

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_for_reading(const std::filesystem::path& path, std::string_view what) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    throw SignatureError("cannot open " + std::string(what) + " " + path.string() + ": " +
                         std::strerror(errno));
  }
  return f;
}

}  // namespace

std::string read_small_file(const std::filesystem::path& path, std::size_t max_bytes,
                            std::string_view what) {
  File f = open_for_reading(path, what);
  std::string out;
  char buf[4096];
  while (true) {
    const std::size_t n = std::fread(buf, 1, sizeof buf, f.get());
    out.append(buf, n);
    if (out.size() > max_bytes) {
      throw SignatureError(std::string(what) + " " + path.string() + " is too large (over " +
                           std::to_string(max_bytes) + " bytes)");
    }
    if (n < sizeof buf) break;
  }
  if (std::ferror(f.get())) {
    throw SignatureError("cannot read " + std::string(what) + " " + path.string());
  }
  return out;
}

void read_file_chunks(const std::filesystem::path& path,
                      const std::function<void(std::span<const std::uint8_t>)>& chunk) {
  File f = open_for_reading(path, "file");
  std::vector<std::uint8_t> buf(64 * 1024);
  while (true) {
    const std::size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n > 0) chunk({buf.data(), n});
    if (n < buf.size()) break;
  }
  if (std::ferror(f.get())) throw SignatureError("cannot read file " + path.string());
}

}  // namespace keel::market::detail
