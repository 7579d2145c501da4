#pragma once

// minisign-compatible keys and signatures (https://jedisct1.github.io/minisign/), built on
// libsodium. Files written here are read by the stock `minisign` tool and vice versa.

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/market/signature_error.hpp"

namespace keel::market {

using KeyId = std::array<std::uint8_t, 8>;

// The key id: the 8 bytes read as a little-endian 64-bit number, in 16 uppercase hex digits
// ("75CDBF113807096B"; "0D37B770B003A349"), as keel shows it everywhere.
std::string key_id_hex(const KeyId& id);
// The same number as minisign writes it in a .pub file's comment ("%" PRIX64: no leading
// zeros, "D37B770B003A349"), so that keel's key files are byte for byte minisign's.
std::string key_id_in_minisign_comment(const KeyId& id);

struct PublicKey {
  KeyId key_id{};
  std::array<std::uint8_t, 32> ed25519{};

  // A .pub file ("untrusted comment: ..." line + base64 line) or the bare base64 line.
  static PublicKey parse(std::string_view file_text);
  static PublicKey load(const std::filesystem::path& path);

  std::string to_base64() const;  // what `minisign -P` takes
  // Empty comment means "minisign public key <ID>", as minisign writes it.
  std::string to_file(std::string_view comment = {}) const;
  std::string key_id_hex() const { return market::key_id_hex(key_id); }

  friend bool operator==(const PublicKey&, const PublicKey&) = default;
};

struct SecretKey {
  KeyId key_id{};
  std::array<std::uint8_t, 64> ed25519{};  // libsodium layout: seed (32) || public key (32)

  // A minisign secret key file, unencrypted (`minisign -G -W`) or password-protected (scrypt).
  // An encrypted key without a password, or with a wrong one, throws SignatureError.
  static SecretKey parse(std::string_view file_text,
                         const std::optional<std::string>& password = std::nullopt);
  static SecretKey load(const std::filesystem::path& path,
                        const std::optional<std::string>& password = std::nullopt);

  // Writes an unencrypted secret key file (as `minisign -G -W` does) that minisign can use.
  // Empty comment means "minisign secret key <ID>".
  std::string to_file(std::string_view comment = {}) const;
  PublicKey public_key() const;
  std::string key_id_hex() const { return market::key_id_hex(key_id); }

  SecretKey() = default;
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey();  // wipes the key material
};

struct KeyPair {
  PublicKey public_key;
  SecretKey secret_key;
};

// A fresh Ed25519 key pair with a random key id.
KeyPair generate_keypair();

enum class SignatureAlgorithm {
  Prehashed,  // "ED": Ed25519 over BLAKE2b-512 of the data (what minisign makes by default)
  Legacy,     // "Ed": Ed25519 over the raw data (minisign -l); refused unless allowed
};

// One .minisig file.
struct Signature {
  std::string untrusted_comment;  // text after "untrusted comment: " (not authenticated)
  SignatureAlgorithm algorithm = SignatureAlgorithm::Prehashed;
  KeyId key_id{};
  std::array<std::uint8_t, 64> signature{};
  std::string trusted_comment;  // text after "trusted comment: " (authenticated)
  std::array<std::uint8_t, 64> global_signature{};  // over signature || trusted_comment

  // Throws SignatureError naming the line that is wrong.
  static Signature parse(std::string_view file_text);
  static Signature load(const std::filesystem::path& path);
  std::string to_file() const;  // the four lines, each ending in '\n'
  std::string key_id_hex() const { return market::key_id_hex(key_id); }
};

inline constexpr std::string_view kDefaultUntrustedComment = "signature from keel secret key";

// Always prehashed ("ED"). Comments must be one line (no control characters except tab).
Signature sign(const SecretKey& key, std::span<const std::uint8_t> data,
               std::string trusted_comment,
               std::string untrusted_comment = std::string(kDefaultUntrustedComment));
// Hashes the file in chunks; it is never loaded whole.
Signature sign_file(const SecretKey& key, const std::filesystem::path& path,
                    std::string trusted_comment,
                    std::string untrusted_comment = std::string(kDefaultUntrustedComment));

struct VerifyOptions {
  bool allow_legacy = false;  // accept "Ed" (unhashed) signatures
};

// Checks, in order: algorithm allowed, key id matches, signature over the data, global
// signature over signature || trusted comment. Returns the verified trusted comment;
// throws SignatureError saying which check failed.
std::string verify(const PublicKey& key, std::span<const std::uint8_t> data,
                   const Signature& sig, VerifyOptions options = {});
std::string verify_file(const PublicKey& key, const std::filesystem::path& path,
                        const Signature& sig, VerifyOptions options = {});

// Picks the trusted key whose id matches the signature's ("signed by key X which is not
// trusted" when none does), then verifies as above.
std::string verify_with_any(const std::vector<PublicKey>& trusted,
                            std::span<const std::uint8_t> data, const Signature& sig,
                            VerifyOptions options = {});
std::string verify_file_with_any(const std::vector<PublicKey>& trusted,
                                 const std::filesystem::path& path, const Signature& sig,
                                 VerifyOptions options = {});

}  // namespace keel::market
