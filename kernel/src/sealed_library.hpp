// Loads a module library from bytes that were already verified, never from the file again.
#pragma once

#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#include <boost/dll/shared_library.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel {

struct LoadError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A library mapped from a sealed memfd. The descriptor stays open while the library is
// loaded: the loader knows libraries by path, and keeping the descriptor keeps its
// /proc/self/fd/N path from being reused by the next module.
class SealedLibrary {
 public:
  SealedLibrary() = default;
  SealedLibrary(SealedLibrary&& other) noexcept;
  SealedLibrary& operator=(SealedLibrary&& other) noexcept;
  SealedLibrary(const SealedLibrary&) = delete;
  SealedLibrary& operator=(const SealedLibrary&) = delete;
  ~SealedLibrary();

  // Throws LoadError with the loader's reason.
  static SealedLibrary load(const std::vector<std::uint8_t>& bytes, const std::string& name);

  boost::dll::shared_library& library() { return lib_; }

 private:
  boost::dll::shared_library lib_;
  int fd_ = -1;
};

}  // namespace keel
