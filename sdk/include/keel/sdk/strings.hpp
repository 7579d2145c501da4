// Conversions between keel_str (the ABI's borrowed string) and C++ strings.
#pragma once

#include <keel/abi.h>

#include <string>
#include <string_view>

namespace keel::sdk {

inline keel_str to_keel_str(std::string_view s) noexcept { return keel_str{s.data(), s.size()}; }

inline std::string_view to_view(keel_str s) noexcept {
  return s.ptr ? std::string_view{s.ptr, s.len} : std::string_view{};
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if the byte there starts none.
inline std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return 1;
  std::size_t n = (c >= 0xF0 && c <= 0xF4) ? 4 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xC2 && c <= 0xDF) ? 2 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

// The same text with every invalid UTF-8 byte replaced by U+FFFD: process output is raw
// bytes, and JSON (and the kernel's parser) accepts only valid UTF-8.
inline std::string sanitize_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t n = utf8_sequence_length(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

// JSON string literal for `text` (quotes included). Invalid UTF-8 bytes are replaced so the
// result is always valid JSON.
inline std::string json_quote(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else if (c < 0x80) {
          out.push_back(static_cast<char>(c));
        } else if (std::size_t n = utf8_sequence_length(text, i); n != 0) {
          out.append(text.substr(i, n));
          i += n - 1;
        } else {
          out += "\xEF\xBF\xBD";  // an invalid byte becomes U+FFFD
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace keel::sdk
