#pragma once

// Temporary directories (tests/support/temp_dir.hpp), small file helpers and a way to run the
// real minisign CLI.

#include "temp_dir.hpp"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace keel::market::test {

namespace fs = std::filesystem;

using keel::test::TempDir;

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline std::span<const std::uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline bool have_minisign() {
#ifdef KEEL_MINISIGN_PROGRAM
  return true;
#else
  return false;
#endif
}

// Runs the real minisign with `args`, feeding `input` on stdin (that is how it reads
// passwords when stdin is not a terminal), in the directory `cwd`.
inline RunResult minisign(const TempDir& cwd, std::initializer_list<std::string> args,
                          const std::string& input = "") {
#ifdef KEEL_MINISIGN_PROGRAM
  const std::string program = KEEL_MINISIGN_PROGRAM;
#else
  const std::string program = "minisign";
#endif
  const auto in = cwd / ".stdin", out = cwd / ".stdout", err = cwd / ".stderr";
  write_file(in, input);
  std::string cmd = "cd " + shell_quote(cwd.path().string()) + " && " + shell_quote(program);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " <" + shell_quote(in.string()) + " >" + shell_quote(out.string()) + " 2>" +
         shell_quote(err.string());
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

}  // namespace keel::market::test
