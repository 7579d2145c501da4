// Hashing: SHA-256 (content ids for packages and modules) and BLAKE2b-512 (minisign's prehash).
// SHA-256 comes from OpenSSL rather than libsodium: OpenSSL uses the CPU's SHA extensions and
// is several times faster, which matters when every module is hashed at start-up.

#include <openssl/evp.h>
#include <sodium.h>

#include <memory>
#include <stdexcept>

#include "common.hpp"
#include "keel/market/sha256.hpp"

namespace keel::market {

namespace {

using Sha256Digest = std::array<std::uint8_t, 32>;

struct Sha256 {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  Sha256() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw std::runtime_error("cannot initialise SHA-256");
  }
  void update(std::span<const std::uint8_t> piece) {
    if (EVP_DigestUpdate(ctx.get(), piece.data(), piece.size()) != 1) throw std::runtime_error("SHA-256 failed");
  }
  Sha256Digest final() {
    Sha256Digest d{};
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx.get(), d.data(), &n) != 1 || n != d.size()) throw std::runtime_error("SHA-256 failed");
    return d;
  }
};

}  // namespace

std::string sha256_hex(std::span<const std::uint8_t> bytes) {
  Sha256 h;
  h.update(bytes);
  return detail::hex_lower(h.final());
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  Sha256 h;
  detail::read_file_chunks(path, [&](std::span<const std::uint8_t> piece) { h.update(piece); });
  return detail::hex_lower(h.final());
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
