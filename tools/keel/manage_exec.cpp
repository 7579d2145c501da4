#include "manage_exec.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

namespace keel::cli {

int exec_manage(char** argv) {
  // The directory of the running executable (symlinks resolved), not of argv[0]: keel may
  // have been found on PATH or through a link.
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::cerr << "keel: cannot find keel's own executable: " << ec.message() << "\n";
    return 1;
  }
  const std::string manage = (self.parent_path() / "keel-manage").string();
  ::execv(manage.c_str(), argv);
  int e = errno;
  std::cerr << "keel: cannot run " << manage << ": " << std::strerror(e)
            << " (keel plugin and keel trust need it installed beside keel)\n";
  return 1;
}

}  // namespace keel::cli
