#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace keel::market {

// An exclusive flock on `file` for the lifetime of the object ($KEEL_HOME/store/.lock while
// plugins change, marketplaces/.lock while indexes change). Waits (and says so through
// `note`) while another keel process holds it. Throws std::runtime_error.
class StoreLock {
 public:
  StoreLock(const std::filesystem::path& file, const std::function<void(const std::string&)>& note);
  ~StoreLock();
  StoreLock(const StoreLock&) = delete;
  StoreLock& operator=(const StoreLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace keel::market
