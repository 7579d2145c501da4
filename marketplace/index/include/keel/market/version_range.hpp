// Semver ranges for dependencies, npm-style:
//   "*" or ""            any release
//   "1.2.3", "=1.2.3"    exactly
//   "1.2", "1.2.x"       >=1.2.0 <1.3.0          "1", "1.x"   >=1.0.0 <2.0.0
//   "^1.2.3"             >=1.2.3 <2.0.0          "^0.2.3"     >=0.2.3 <0.3.0
//   "~1.2.3"             >=1.2.3 <1.3.0
//   ">=1.0.0 <2.0.0"     every comparator (space-separated) must hold
//   "^1.0.0 || ^2.0.0"   any of the alternatives
// A pre-release (1.2.3-beta.1) matches only a range that names a pre-release of the same
// major.minor.patch, as in npm.
#pragma once

#include <string_view>

namespace keel::market {

bool valid_version_range(std::string_view range);
// False for an invalid range or version.
bool satisfies(std::string_view version, std::string_view range);

}  // namespace keel::market
