// Limits and errors: which member names are acceptable, how entries and bytes are counted
// against ExtractLimits, and how refusals are worded.
#include "archive_internal.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace keel::market::detail {

namespace {

constexpr std::size_t kMaxNameBytes = 4095;
constexpr std::size_t kMaxComponentBytes = 255;

std::string bytes_text(std::uint64_t n) { return std::to_string(n) + " bytes"; }

}  // namespace

std::string printable(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    for (unsigned char c : name) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return out;
}

std::string name_problem(std::string_view name) {
    if (name.empty()) return "the name is empty";
    if (name.size() > kMaxNameBytes)
        return "the name is longer than " + std::to_string(kMaxNameBytes) + " bytes";
    if (name.front() == '/') return "it is an absolute path";
    for (unsigned char c : name) {
        if (c == '\\') return "it contains a backslash";
        if (c < 0x20 || c == 0x7f) return "it contains a control character";
    }
    std::size_t start = 0;
    while (true) {
        std::size_t slash = name.find('/', start);
        std::string_view part = name.substr(start, slash == std::string_view::npos
                                                       ? std::string_view::npos
                                                       : slash - start);
        if (part.empty()) return "it contains an empty path component ('//' or a trailing '/')";
        if (part == "..") return "it contains a '..' component";
        if (part == ".") return "it contains a '.' component";
        if (part.size() > kMaxComponentBytes)
            return "a path component is longer than " + std::to_string(kMaxComponentBytes) +
                   " bytes";
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return {};
}

void refuse_entry(std::string_view name, std::string_view reason) {
    throw ArchiveError("archive entry '" + printable(name) + "' refused: " + std::string(reason));
}

std::string errno_text(int err) { return std::strerror(err); }

void Budget::count_entry(std::string_view name) {
    if (++entries_ > limits_.max_entries)
        refuse_entry(name, "the archive has more than " + std::to_string(limits_.max_entries) +
                               " entries (the entry limit)");
}

void Budget::begin_file(std::string_view name, std::uint64_t declared_size) {
    if (declared_size > limits_.max_entry_bytes)
        refuse_entry(name, "its header declares " + bytes_text(declared_size) +
                               ", over the per-entry limit of " +
                               bytes_text(limits_.max_entry_bytes));
    if (declared_size > limits_.max_total_bytes - std::min(total_, limits_.max_total_bytes))
        refuse_entry(name, "its header declares " + bytes_text(declared_size) +
                               ", which would take the archive over the total limit of " +
                               bytes_text(limits_.max_total_bytes));
    declared_ = declared_size;
    entry_ = 0;
}

void Budget::consume(std::string_view name, std::uint64_t bytes) {
    entry_ += bytes;
    total_ += bytes;
    if (entry_ > declared_)
        refuse_entry(name, "it holds more data than the " + bytes_text(declared_) +
                               " its header declares");
    if (entry_ > limits_.max_entry_bytes)
        refuse_entry(name, "its data exceeds the per-entry limit of " +
                               bytes_text(limits_.max_entry_bytes));
    if (total_ > limits_.max_total_bytes)
        refuse_entry(name, "the archive's data exceeds the total limit of " +
                               bytes_text(limits_.max_total_bytes));
}

void Budget::end_file(std::string_view name) {
    if (entry_ != declared_)
        refuse_entry(name, "it holds " + bytes_text(entry_) + " but its header declares " +
                               bytes_text(declared_));
}

}  // namespace keel::market::detail
