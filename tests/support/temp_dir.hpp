// A fresh directory under the system temp dir (std::filesystem::temp_directory_path(): $TMPDIR
// or /tmp), removed with everything in it when the object goes. Each test area passes its own
// prefix ("keel-itest", "keel-e2e", ...), so a leftover from a killed run says whose it is.
// A tree that a sandbox must not find writable belongs under scratch_parent() instead
// (scratch_dir.hpp): the temp dirs are writable roots in workspace-write.
#pragma once

#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace keel::test {

class TempDir {
 public:
  // Creates <temp dir>/<prefix>-XXXXXX (mode 0700); path() is its canonical form.
  explicit TempDir(std::string_view prefix = "keel-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    std::error_code ec;
    path_ = std::filesystem::canonical(tmpl, ec);
    if (ec) {
      std::filesystem::remove(tmpl, ec);
      throw std::runtime_error("cannot resolve " + tmpl);
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

  // Writes `bytes` to `rel` (missing parent directories are created, an existing file is
  // replaced) and returns the full path; throws if the file cannot be written.
  std::filesystem::path write(const std::string& rel, std::string_view bytes) const {
    auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
    return p;
  }

  // The contents of `rel`; throws if it cannot be opened.
  std::string read(const std::string& rel) const {
    std::ifstream in(path_ / rel, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + (path_ / rel).string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Whether `rel` exists; a symlink counts even if it dangles.
  bool exists(const std::string& rel) const {
    return std::filesystem::exists(std::filesystem::symlink_status(path_ / rel));
  }

 private:
  std::filesystem::path path_;
};

}  // namespace keel::test
