#pragma once

#include <stdexcept>

namespace keel::market {

// Everything in keel_minisign reports problems with this exception; what() is a sentence a
// user can act on ("signature was made with key A, but the trusted key is B").
class SignatureError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace keel::market
