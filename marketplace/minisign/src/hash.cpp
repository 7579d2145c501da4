// Hashing: SHA-256 (content ids for packages) and BLAKE2b-512 (minisign's prehash).

#include <sodium.h>

#include "common.hpp"
#include "keel/market/sha256.hpp"

namespace keel::market {

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  detail::ensure_sodium();
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
  return detail::hex_lower(digest);
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  detail::ensure_sodium();
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  detail::read_file_chunks(path, [&](std::span<const std::uint8_t> piece) {
    crypto_hash_sha256_update(&state, piece.data(), piece.size());
  });
  std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256_final(&state, digest.data());
  return detail::hex_lower(digest);
}

namespace detail {

Blake2b512 blake2b512(std::span<const std::uint8_t> data) {
  ensure_sodium();
  Blake2b512 out{};
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Blake2b512 blake2b512_file(const std::filesystem::path& path) {
  ensure_sodium();
  crypto_generichash_state state;
  Blake2b512 out{};
  crypto_generichash_init(&state, nullptr, 0, out.size());
  read_file_chunks(path, [&](std::span<const std::uint8_t> piece) {
    crypto_generichash_update(&state, piece.data(), piece.size());
  });
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

}  // namespace detail
}  // namespace keel::market
