// Fresh key pairs: random key id, libsodium Ed25519 keys.

#include <sodium.h>

#include "common.hpp"
#include "keel/market/minisign.hpp"

namespace keel::market {

KeyPair generate_keypair() {
  detail::ensure_sodium();
  KeyPair pair;
  randombytes_buf(pair.secret_key.key_id.data(), pair.secret_key.key_id.size());
  crypto_sign_keypair(pair.public_key.ed25519.data(), pair.secret_key.ed25519.data());
  pair.public_key.key_id = pair.secret_key.key_id;
  return pair;
}

}  // namespace keel::market
