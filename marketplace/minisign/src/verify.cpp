// Verification, in minisign's order: algorithm allowed, key id matches, signature over the
// data (its BLAKE2b-512 hash for "ED"), global signature over signature || trusted comment.

#include <sodium.h>

#include <algorithm>
#include <vector>

#include "common.hpp"
#include "keel/market/minisign.hpp"

namespace keel::market {
namespace {

void check_algorithm(const Signature& sig, VerifyOptions options) {
  if (sig.algorithm == SignatureAlgorithm::Legacy && !options.allow_legacy) {
    throw SignatureError(
        "signature uses the legacy \"Ed\" format (Ed25519 over the raw, unhashed data); legacy "
        "signatures are refused unless explicitly allowed - re-sign with a current minisign, "
        "which makes prehashed \"ED\" signatures");
  }
}

void check_algorithm_and_key(const PublicKey& key, const Signature& sig, VerifyOptions options) {
  check_algorithm(sig, options);
  if (sig.key_id != key.key_id) {
    throw SignatureError("signature was made with key " + sig.key_id_hex() +
                         ", but the public key given is " + key.key_id_hex());
  }
}

void check_data_signature(const PublicKey& key, const Signature& sig,
                          std::span<const std::uint8_t> message) {
  if (crypto_sign_verify_detached(sig.signature.data(), message.data(), message.size(),
                                  key.ed25519.data()) != 0) {
    throw SignatureError("signature verification failed: the data does not match the signature "
                         "made with key " + key.key_id_hex() +
                         " (the file was modified or the signature is corrupt)");
  }
}

std::string check_global_signature(const PublicKey& key, const Signature& sig) {
  std::string signed_text(sig.signature.begin(), sig.signature.end());
  signed_text += sig.trusted_comment;
  const auto bytes = detail::bytes_of(signed_text);
  if (crypto_sign_verify_detached(sig.global_signature.data(), bytes.data(), bytes.size(),
                                  key.ed25519.data()) != 0) {
    throw SignatureError("trusted comment verification failed: the trusted comment or its "
                         "global signature was tampered with");
  }
  return sig.trusted_comment;
}

const PublicKey& find_trusted(const std::vector<PublicKey>& trusted, const Signature& sig) {
  const auto it = std::find_if(trusted.begin(), trusted.end(),
                               [&](const PublicKey& k) { return k.key_id == sig.key_id; });
  if (it != trusted.end()) return *it;
  std::string known;
  for (const auto& k : trusted) known += (known.empty() ? "" : ", ") + k.key_id_hex();
  throw SignatureError("signed by key " + sig.key_id_hex() + " which is not trusted (" +
                       (known.empty() ? std::string("no keys are trusted")
                                      : "trusted keys: " + known) +
                       ")");
}

}  // namespace

std::string verify(const PublicKey& key, std::span<const std::uint8_t> data,
                   const Signature& sig, VerifyOptions options) {
  detail::ensure_sodium();
  check_algorithm_and_key(key, sig, options);
  if (sig.algorithm == SignatureAlgorithm::Prehashed) {
    check_data_signature(key, sig, detail::blake2b512(data));
  } else {
    check_data_signature(key, sig, data);
  }
  return check_global_signature(key, sig);
}

std::string verify_file(const PublicKey& key, const std::filesystem::path& path,
                        const Signature& sig, VerifyOptions options) {
  detail::ensure_sodium();
  check_algorithm_and_key(key, sig, options);
  if (sig.algorithm == SignatureAlgorithm::Prehashed) {
    check_data_signature(key, sig, detail::blake2b512_file(path));
  } else {
    std::vector<std::uint8_t> whole;  // legacy signs the raw bytes: nothing to stream
    detail::read_file_chunks(path, [&](std::span<const std::uint8_t> piece) {
      whole.insert(whole.end(), piece.begin(), piece.end());
    });
    check_data_signature(key, sig, whole);
  }
  return check_global_signature(key, sig);
}

std::string verify_with_any(const std::vector<PublicKey>& trusted,
                            std::span<const std::uint8_t> data, const Signature& sig,
                            VerifyOptions options) {
  check_algorithm(sig, options);
  return verify(find_trusted(trusted, sig), data, sig, options);
}

std::string verify_file_with_any(const std::vector<PublicKey>& trusted,
                                 const std::filesystem::path& path, const Signature& sig,
                                 VerifyOptions options) {
  check_algorithm(sig, options);
  return verify_file(find_trusted(trusted, sig), path, sig, options);
}

}  // namespace keel::market
