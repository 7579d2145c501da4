// A throwaway working directory with small file helpers for the apply_patch tests.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace keel::tools::patch::test {

class TempWorkdir {
public:
    TempWorkdir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "keel-apply-patch-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        root_ = std::filesystem::canonical(tmpl);
        dir_ = root_ / "work";
        std::filesystem::create_directory(dir_);
    }
    ~TempWorkdir() {
        std::error_code ec;
        std::filesystem::remove_all(root_, ec);
    }
    TempWorkdir(const TempWorkdir&) = delete;
    TempWorkdir& operator=(const TempWorkdir&) = delete;

    // The working directory; its parent (outside()) is a scratch area outside it.
    const std::filesystem::path& path() const { return dir_; }
    const std::filesystem::path& outside() const { return root_; }

    void write(const std::string& rel, const std::string& contents) const {
        const auto p = dir_ / rel;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out << contents;
    }
    std::string read(const std::string& rel) const { return read_abs(dir_ / rel); }
    bool exists(const std::string& rel) const {
        return std::filesystem::exists(std::filesystem::symlink_status(dir_ / rel));
    }

    static std::string read_abs(const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        if (!in) throw std::runtime_error("cannot read " + p.string());
        std::ostringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    // Every entry under the whole temp root (work dir and outside), with file contents, to
    // check that a failed patch left everything byte-identical (and no temp files behind).
    std::map<std::string, std::string> snapshot() const {
        std::map<std::string, std::string> out;
        for (const auto& e : std::filesystem::recursive_directory_iterator(root_)) {
            const auto rel = std::filesystem::relative(e.path(), root_).string();
            if (e.is_symlink()) {
                out[rel] = "symlink:" + std::filesystem::read_symlink(e.path()).string();
            } else if (e.is_regular_file()) {
                out[rel] = read_abs(e.path());
            } else {
                out[rel] = "<dir>";
            }
        }
        return out;
    }

private:
    std::filesystem::path root_;
    std::filesystem::path dir_;
};

}  // namespace keel::tools::patch::test
