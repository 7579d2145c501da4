// Signing: always prehashed ("ED"), Ed25519 over BLAKE2b-512 of the data, plus the global
// signature over signature || trusted comment.

#include <sodium.h>

#include "common.hpp"
#include "keel/market/minisign.hpp"

namespace keel::market {
namespace {

// Kept below minisign's line buffers (1024 / 8192 bytes, prefix and newline included).
constexpr std::size_t kMaxUntrustedComment = 1000;
constexpr std::size_t kMaxTrustedComment = 8000;

Signature sign_hash(const SecretKey& key, const detail::Blake2b512& hash,
                    std::string trusted_comment, std::string untrusted_comment) {
  detail::check_one_line(trusted_comment, kMaxTrustedComment, "trusted comment");
  detail::check_one_line(untrusted_comment, kMaxUntrustedComment, "untrusted comment");
  Signature sig;
  sig.algorithm = SignatureAlgorithm::Prehashed;
  sig.key_id = key.key_id;
  sig.untrusted_comment = std::move(untrusted_comment);
  sig.trusted_comment = std::move(trusted_comment);
  crypto_sign_detached(sig.signature.data(), nullptr, hash.data(), hash.size(),
                       key.ed25519.data());

  std::string global(sig.signature.begin(), sig.signature.end());
  global += sig.trusted_comment;
  const auto bytes = detail::bytes_of(global);
  crypto_sign_detached(sig.global_signature.data(), nullptr, bytes.data(), bytes.size(),
                       key.ed25519.data());
  return sig;
}

}  // namespace

Signature sign(const SecretKey& key, std::span<const std::uint8_t> data,
               std::string trusted_comment, std::string untrusted_comment) {
  return sign_hash(key, detail::blake2b512(data), std::move(trusted_comment),
                   std::move(untrusted_comment));
}

Signature sign_file(const SecretKey& key, const std::filesystem::path& path,
                    std::string trusted_comment, std::string untrusted_comment) {
  // Check the comments before reading a possibly large file.
  detail::check_one_line(trusted_comment, kMaxTrustedComment, "trusted comment");
  detail::check_one_line(untrusted_comment, kMaxUntrustedComment, "untrusted comment");
  return sign_hash(key, detail::blake2b512_file(path), std::move(trusted_comment),
                   std::move(untrusted_comment));
}

}  // namespace keel::market
