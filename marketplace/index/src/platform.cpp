#include <keel/abi.h>
#include <keel/market/index.hpp>

#include <sys/utsname.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace keel::market {
namespace {

std::string normalise_arch(std::string a) {
  if (a == "amd64" || a == "x64") return "x86_64";
  if (a == "arm64") return "aarch64";
  if (a == "i386" || a == "i486" || a == "i586" || a == "i686") return "x86";
  return a;
}

bool field_matches(const std::string& wanted, const std::string& host) {
  return wanted.empty() || wanted == "any" || wanted == "*" || wanted == host;
}

// "1.2" -> {1, 2}; "1.*" -> {1, UINT_MAX}. False if malformed.
bool parse_abi(std::string_view s, unsigned& major, unsigned& minor, bool allow_star) {
  auto dot = s.find('.');
  if (dot == std::string_view::npos) return false;
  auto a = s.substr(0, dot), b = s.substr(dot + 1);
  auto [p1, e1] = std::from_chars(a.data(), a.data() + a.size(), major);
  if (e1 != std::errc() || p1 != a.data() + a.size() || a.empty()) return false;
  if (allow_star && (b == "*" || b == "x")) {
    minor = ~0u;
    return true;
  }
  auto [p2, e2] = std::from_chars(b.data(), b.data() + b.size(), minor);
  return e2 == std::errc() && p2 == b.data() + b.size() && !b.empty();
}

template <typename T>
T read_le(std::span<const std::uint8_t> b, std::size_t off, bool big) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    T byte = b[off + i];
    v |= big ? byte << (8 * (sizeof(T) - 1 - i)) : byte << (8 * i);
  }
  return v;
}

}  // namespace

unsigned kernel_abi_major() { return KEEL_ABI_MAJOR; }
unsigned kernel_abi_minor() { return KEEL_ABI_MINOR; }

Platform host_platform() {
  Platform p;
  utsname u{};
  p.os = "linux";
  if (::uname(&u) == 0) p.arch = normalise_arch(u.machine);
#if defined(__GLIBC__)
  p.libc = "gnu";
#else
  p.libc = "musl";
#endif
  return p;
}

bool platform_matches(const Platform& wanted, const Platform& host) {
  return field_matches(wanted.os, host.os) && field_matches(normalise_arch(wanted.arch), host.arch) &&
         field_matches(wanted.libc, host.libc);
}

std::string describe(const Platform& p) {
  if (p.empty()) return "any";
  auto f = [](const std::string& s) { return s.empty() ? std::string("any") : s; };
  return f(p.os) + "/" + f(p.arch) + "/" + f(p.libc);
}

Platform elf_platform(std::span<const std::uint8_t> b) {
  Platform p;
  if (b.size() < 64 || std::memcmp(b.data(), "\x7f" "ELF", 4) != 0) return p;
  const bool big = b[5] == 2;
  const std::uint16_t machine = read_le<std::uint16_t>(b, 18, big);
  switch (machine) {
    case 62: p.arch = "x86_64"; break;
    case 183: p.arch = "aarch64"; break;
    case 3: p.arch = "x86"; break;
    case 40: p.arch = "arm"; break;
    case 243: p.arch = "riscv64"; break;
    case 21: p.arch = "ppc64le"; break;
    case 22: p.arch = "s390x"; break;
    default: p.arch = "elf-machine-" + std::to_string(machine);
  }
  const std::uint8_t osabi = b[7];
  if (osabi == 0 || osabi == 3) p.os = "linux";
  // The C library it was linked against, from the names in its dynamic string table.
  auto has = [&](std::string_view needle) {
    return std::search(b.begin(), b.end(), needle.begin(), needle.end()) != b.end();
  };
  if (has(std::string_view("libc.so.6\0", 10))) p.libc = "gnu";
  else if (has("libc.musl-")) p.libc = "musl";
  return p;
}

bool valid_abi_range(const AbiRange& r) {
  unsigned a, b;
  if (!r.min.empty() && !parse_abi(r.min, a, b, false)) return false;
  if (!r.max.empty() && !parse_abi(r.max, a, b, true)) return false;
  return true;
}

bool abi_compatible(const AbiRange& r, unsigned major, unsigned minor) {
  unsigned a, b;
  auto key = [](unsigned x, unsigned y) { return (static_cast<std::uint64_t>(x) << 32) | y; };
  if (!r.min.empty()) {
    if (!parse_abi(r.min, a, b, false) || key(major, minor) < key(a, b)) return false;
  }
  if (!r.max.empty()) {
    if (!parse_abi(r.max, a, b, true) || key(major, minor) > key(a, b)) return false;
  }
  return true;
}

}  // namespace keel::market
