// minisign secret key files. Line 2 is base64 of 158 bytes:
//   "Ed" | kdf ("Sc" = scrypt, or two zero bytes = unencrypted) | "B2" | salt (32)
//   | opslimit (8, LE) | memlimit (8, LE) | key id (8) | Ed25519 secret key (64) | checksum (32)
// The last 104 bytes are XORed with scrypt(password) when the key is encrypted. The checksum
// is BLAKE2b-256 of "Ed" || key id || secret key (minisign 0.11 leaves it zero with -W).

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "common.hpp"
#include "keel/market/minisign.hpp"

namespace keel::market {
namespace {

constexpr std::size_t kRawSize = 158;
constexpr std::size_t kSaltOffset = 6;
constexpr std::size_t kOpsOffset = 38;
constexpr std::size_t kMemOffset = 46;
constexpr std::size_t kKeyIdOffset = 54;
constexpr std::size_t kSkOffset = 62;
constexpr std::size_t kChkOffset = 126;
constexpr std::size_t kSecretPartSize = kRawSize - kKeyIdOffset;  // 104, the encrypted part
constexpr std::uint64_t kMaxMemlimit = std::uint64_t{16} << 30;    // refuse absurd scrypt costs

static_assert(kSaltOffset + crypto_pwhash_scryptsalsa208sha256_SALTBYTES == kOpsOffset);
static_assert(kSkOffset + crypto_sign_SECRETKEYBYTES == kChkOffset);
static_assert(kChkOffset + crypto_generichash_BYTES == kRawSize);

// Holds the decoded key file and wipes it on every exit path.
struct RawKey {
  std::array<std::uint8_t, kRawSize> bytes{};
  ~RawKey() { sodium_memzero(bytes.data(), bytes.size()); }
};

std::uint64_t read_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::array<std::uint8_t, crypto_generichash_BYTES> checksum(const KeyId& id,
                                                            const std::uint8_t* sk) {
  std::array<std::uint8_t, crypto_generichash_BYTES> out{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, out.size());
  const std::uint8_t alg[2] = {'E', 'd'};
  crypto_generichash_update(&st, alg, sizeof alg);
  crypto_generichash_update(&st, id.data(), id.size());
  crypto_generichash_update(&st, sk, crypto_sign_SECRETKEYBYTES);
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof st);
  return out;
}

void decrypt(RawKey& raw, const std::string& password) {
  const std::uint64_t ops = read_le64(raw.bytes.data() + kOpsOffset);
  const std::uint64_t mem = read_le64(raw.bytes.data() + kMemOffset);
  if (mem > kMaxMemlimit || mem > std::numeric_limits<std::size_t>::max() ||
      ops > (std::uint64_t{1} << 40)) {
    throw SignatureError("secret key asks for an unreasonable scrypt cost (opslimit " +
                         std::to_string(ops) + ", memlimit " + std::to_string(mem) + ")");
  }
  std::array<std::uint8_t, kSecretPartSize> stream{};
  if (crypto_pwhash_scryptsalsa208sha256(stream.data(), stream.size(), password.data(),
                                         password.size(), raw.bytes.data() + kSaltOffset, ops,
                                         static_cast<std::size_t>(mem)) != 0) {
    throw SignatureError("could not derive the secret key's decryption key from the password "
                         "(scrypt failed, out of memory?)");
  }
  for (std::size_t i = 0; i < stream.size(); ++i) raw.bytes[kKeyIdOffset + i] ^= stream[i];
  sodium_memzero(stream.data(), stream.size());
}

}  // namespace

SecretKey::~SecretKey() { sodium_memzero(ed25519.data(), ed25519.size()); }

SecretKey SecretKey::parse(std::string_view file_text, const std::optional<std::string>& password) {
  detail::ensure_sodium();
  const auto line = detail::key_base64_line(file_text, "secret key");
  RawKey raw;
  if (!detail::base64_decode_exact(line, raw.bytes)) {
    throw SignatureError("secret key is not valid: expected base64 of " +
                         std::to_string(kRawSize) + " bytes");
  }
  const auto* b = raw.bytes.data();
  if (b[0] != 'E' || b[1] != 'd') {
    throw SignatureError("secret key uses an unsupported algorithm (expected Ed25519, \"Ed\")");
  }
  if (b[4] != 'B' || b[5] != '2') {
    throw SignatureError("secret key uses an unsupported checksum (expected BLAKE2b, \"B2\")");
  }
  const bool encrypted = b[2] == 'S' && b[3] == 'c';
  if (!encrypted && !(b[2] == 0 && b[3] == 0)) {
    throw SignatureError("secret key uses an unsupported key derivation (expected scrypt or none)");
  }
  if (encrypted) {
    if (!password) {
      throw SignatureError("secret key is encrypted: a password is needed to use it");
    }
    decrypt(raw, *password);
  }

  SecretKey key;
  std::memcpy(key.key_id.data(), b + kKeyIdOffset, key.key_id.size());
  std::memcpy(key.ed25519.data(), b + kSkOffset, key.ed25519.size());

  const auto* stored = b + kChkOffset;
  const bool zero_checksum =
      std::all_of(stored, stored + crypto_generichash_BYTES, [](std::uint8_t v) { return v == 0; });
  // An unencrypted key written by minisign 0.11 carries no checksum; anything else must match.
  if (encrypted || !zero_checksum) {
    auto expected = checksum(key.key_id, key.ed25519.data());
    const bool ok = sodium_memcmp(expected.data(), stored, expected.size()) == 0;
    sodium_memzero(expected.data(), expected.size());
    if (!ok) {
      throw SignatureError(encrypted ? "wrong password for the secret key"
                                     : "secret key is corrupt (checksum mismatch)");
    }
  }
  // The public half stored in the key must be the one its seed derives.
  std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> derived{};
  crypto_sign_seed_keypair(pk.data(), derived.data(), key.ed25519.data());
  sodium_memzero(derived.data(), derived.size());
  if (std::memcmp(pk.data(), key.ed25519.data() + crypto_sign_SEEDBYTES, pk.size()) != 0) {
    throw SignatureError("secret key is corrupt (its public half does not match its seed)");
  }
  return key;
}

SecretKey SecretKey::load(const std::filesystem::path& path,
                          const std::optional<std::string>& password) {
  const auto text = detail::read_small_file(path, 16 * 1024, "secret key file");
  try {
    return parse(text, password);
  } catch (const SignatureError& e) {
    throw SignatureError(path.string() + ": " + e.what());
  }
}

std::string SecretKey::to_file(std::string_view comment) const {
  detail::ensure_sodium();
  std::string text =
      comment.empty() ? "minisign unencrypted secret key " + key_id_hex() : std::string(comment);
  detail::check_one_line(text, 1000, "secret key comment");
  RawKey raw;  // kdf, salt, opslimit and memlimit stay zero: unencrypted
  raw.bytes[0] = 'E';
  raw.bytes[1] = 'd';
  raw.bytes[4] = 'B';
  raw.bytes[5] = '2';
  std::memcpy(raw.bytes.data() + kKeyIdOffset, key_id.data(), key_id.size());
  std::memcpy(raw.bytes.data() + kSkOffset, ed25519.data(), ed25519.size());
  const auto chk = checksum(key_id, ed25519.data());
  std::memcpy(raw.bytes.data() + kChkOffset, chk.data(), chk.size());
  return std::string(detail::kUntrustedPrefix) + text + "\n" + detail::base64_encode(raw.bytes) +
         "\n";
}

PublicKey SecretKey::public_key() const {
  PublicKey pk;
  pk.key_id = key_id;
  std::memcpy(pk.ed25519.data(), ed25519.data() + crypto_sign_SEEDBYTES, pk.ed25519.size());
  return pk;
}

}  // namespace keel::market
