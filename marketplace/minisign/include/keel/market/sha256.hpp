#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace keel::market {

// SHA-256 as lowercase hex (64 chars), via OpenSSL.
std::string sha256_hex(std::span<const std::uint8_t> bytes);
// Hashes the file in chunks; throws SignatureError when it cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace keel::market
