// Where a marketplace lives: a local directory or an HTTP(S) URL. Both serve the same files
// (index.json, index.json.minisig, the packages and their .minisig), so a directory made by
// `keel-pack index` can be used in place or put behind any static HTTP server.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::market {

struct FetchError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Called as bytes arrive: (bytes so far, bytes expected or 0 if unknown).
using ProgressFn = std::function<void(std::uint64_t done, std::uint64_t total)>;

struct FetchOptions {
  std::uint64_t max_bytes = 16u << 20;  // more than this is refused
  std::uint64_t expected = 0;           // for progress; 0 = unknown
  bool exact = false;                   // fewer than max_bytes is refused too (declared size)
  bool sync = true;                     // fetch_to_file: fsync the file when complete
  std::string* sha256 = nullptr;        // if set: receives the SHA-256 (hex) of what was fetched
  ProgressFn progress;
  // Test hook: called after each chunk is written, with the bytes so far.
  std::function<void(std::uint64_t)> after_chunk;

  static FetchOptions capped(std::uint64_t max) {
    FetchOptions o;
    o.max_bytes = max;
    return o;
  }
};

class Source {
 public:
  virtual ~Source() = default;
  // A directory ("/srv/market", "./market", "file:///srv/market") or "http(s)://host/path/".
  // A location naming index.json itself stands for its folder. Throws FetchError.
  static std::unique_ptr<Source> open(const std::string& location);
  // Whether `location` is a URL (http/https) rather than a directory.
  static bool is_url(const std::string& location);

  // The normalised location (absolute directory, or URL ending in '/').
  virtual std::string location() const = 0;
  // `ref` is a path relative to the index ("hello-1.0.0.keelpkg") or an absolute URL.
  // The whole content, at most options.max_bytes.
  virtual std::vector<std::uint8_t> fetch(const std::string& ref, const FetchOptions& options) = 0;
  // Streams into `out` (created or truncated), fsynced when complete.
  virtual void fetch_to_file(const std::string& ref, const std::filesystem::path& out, const FetchOptions& options) = 0;
};

}  // namespace keel::market
