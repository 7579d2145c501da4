#include <keel/common/sse.hpp>

#include <cstring>

namespace keel::common {

namespace {
constexpr std::string_view kBom = "\xEF\xBB\xBF";

// First '\r' or '\n' in [p, end), or end.
inline const char* find_eol(const char* p, const char* end) {
  auto n = static_cast<std::size_t>(end - p);
  const char* lf = static_cast<const char*>(std::memchr(p, '\n', n));
  const char* limit = lf ? lf : end;
  const char* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(limit - p)));
  return cr ? cr : limit;
}
}  // namespace

SseParser::SseParser(Handler on_event, std::size_t max_event_bytes)
    : on_event_(std::move(on_event)), max_event_bytes_(max_event_bytes) {}

void SseParser::reset() {
  line_.clear();
  data_.clear();
  event_.clear();
  last_id_.clear();
  retry_ms_.reset();
  skip_lf_ = false;
  started_ = false;
  bom_seen_ = 0;
}

void SseParser::feed(std::string_view bytes) {
  if (!started_) {
    while (bom_seen_ < kBom.size() && !bytes.empty() && bytes.front() == kBom[bom_seen_]) {
      ++bom_seen_;
      bytes.remove_prefix(1);
    }
    if (bom_seen_ == kBom.size()) {
      started_ = true;
    } else if (!bytes.empty()) {
      // What looked like the start of a BOM was not one: those bytes are content.
      started_ = true;
      if (bom_seen_ > 0) feed_lines(kBom.substr(0, bom_seen_));
    } else {
      return;  // everything so far is a prefix of the BOM
    }
  }
  feed_lines(bytes);
}

void SseParser::feed_lines(std::string_view bytes) {
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  if (skip_lf_ && p < end) {
    skip_lf_ = false;
    if (*p == '\n') ++p;
  }
  while (p < end) {
    const char* eol = find_eol(p, end);
    if (eol == end) {
      // Unterminated: keep the partial line for the next feed.
      if (line_.size() + static_cast<std::size_t>(end - p) + data_.size() > max_event_bytes_)
        throw SseError("server-sent event larger than " + std::to_string(max_event_bytes_) + " bytes");
      line_.append(p, end);
      return;
    }
    if (line_.empty()) {
      process_line(std::string_view(p, static_cast<std::size_t>(eol - p)));
    } else {
      line_.append(p, eol);
      process_line(line_);
      line_.clear();
    }
    p = eol + 1;
    if (*eol == '\r') {
      if (p < end) {
        if (*p == '\n') ++p;
      } else {
        skip_lf_ = true;
      }
    }
  }
}

void SseParser::process_line(std::string_view line) {
  if (line.empty()) {
    dispatch();
    return;
  }
  if (line.front() == ':') return;  // comment
  std::string_view field = line, value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (data_.size() + value.size() + 1 > max_event_bytes_)
      throw SseError("server-sent event larger than " + std::to_string(max_event_bytes_) + " bytes");
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    if (!value.empty() && value.size() <= 18 &&
        value.find_first_not_of("0123456789") == std::string_view::npos) {
      long long ms = 0;
      for (char c : value) ms = ms * 10 + (c - '0');
      retry_ms_ = ms;
    }
  }
  // Any other field is ignored.
}

void SseParser::dispatch() {
  if (data_.empty()) {
    event_.clear();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  out_.event.swap(event_);
  out_.data.swap(data_);
  out_.id = last_id_;
  event_.clear();
  data_.clear();
  on_event_(out_);
}

bool SseParser::finish(bool dispatch_whole_lines) {
  if (dispatch_whole_lines && line_.empty() && !data_.empty()) {
    dispatch();
    return false;
  }
  bool was_pending = pending();
  line_.clear();
  data_.clear();
  event_.clear();
  skip_lf_ = false;
  return was_pending;
}

}  // namespace keel::common
