// The uncompressed tar stream of an in-memory archive: gzip inflated with zlib, checking
// each member's CRC-32 and length, and bounded in size.
#include "archive_internal.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>

#include <zlib.h>

namespace keel::market::detail {

namespace {
constexpr std::size_t kOutChunk = std::size_t{256} << 10;
constexpr std::size_t kMaxInChunk = std::size_t{1} << 30;  // z_stream::avail_in is 32-bit
}  // namespace

struct TarStream::Inflater {
    z_stream s{};
    bool ready = false;
    ~Inflater() {
        if (ready) inflateEnd(&s);
    }
};

TarStream::TarStream(std::span<const std::uint8_t> input, std::uint64_t max_stream_bytes)
    : input_(input), max_bytes_(max_stream_bytes) {
    gzip_ = input.size() >= 2 && input[0] == 0x1f && input[1] == 0x8b;
    if (!gzip_) return;
    z_ = std::make_unique<Inflater>();
    z_->s.next_in = const_cast<Bytef*>(input.data());  // zlib never writes through next_in
    z_->s.avail_in = 0;
    if (inflateInit2(&z_->s, 16 + MAX_WBITS) != Z_OK)  // 16: gzip wrapper, CRC and ISIZE checked
        throw ArchiveError("cannot initialise gzip decompression");
    z_->ready = true;
    out_.resize(kOutChunk);
}

TarStream::~TarStream() = default;

la_ssize_t TarStream::fail(std::string why) {
    error_ = std::move(why);
    return -1;
}

la_ssize_t TarStream::read_callback(struct archive* a, void* self, const void** buffer) {
    auto* stream = static_cast<TarStream*>(self);
    la_ssize_t n = stream->next(buffer);
    if (n < 0) archive_set_error(a, EINVAL, "%s", stream->error_.c_str());
    return n;
}

la_ssize_t TarStream::next(const void** buffer) {
    if (!error_.empty()) return -1;
    if (done_) return 0;

    if (!gzip_) {
        done_ = true;
        if (input_.size() > max_bytes_ || input_.size() > static_cast<std::size_t>(SSIZE_MAX))
            return fail("the tar data is larger than " + std::to_string(max_bytes_) +
                        " bytes, more than the extraction limits allow");
        *buffer = input_.data();
        return static_cast<la_ssize_t>(input_.size());
    }

    z_stream& s = z_->s;
    const std::uint8_t* const begin = input_.data();
    s.next_out = out_.data();
    s.avail_out = static_cast<uInt>(out_.size());
    while (s.avail_out == out_.size()) {
        std::size_t offset = static_cast<std::size_t>(s.next_in - begin);
        if (s.avail_in == 0 && offset < input_.size())
            s.avail_in = static_cast<uInt>(std::min(input_.size() - offset, kMaxInChunk));
        const int rc = inflate(&s, Z_NO_FLUSH);
        offset = static_cast<std::size_t>(s.next_in - begin);
        if (rc == Z_STREAM_END) {
            if (s.avail_in == 0 && offset == input_.size()) {
                done_ = true;
                break;
            }
            // Another gzip member may follow, or zero padding to a block size (which
            // libarchive's writer adds by default, and gzip(1) ignores); nothing else.
            const auto rest = input_.subspan(offset);
            if (std::all_of(rest.begin(), rest.end(), [](std::uint8_t b) { return b == 0; })) {
                done_ = true;
                break;
            }
            if (rest.size() < 2 || rest[0] != 0x1f || rest[1] != 0x8b)
                return fail("unexpected data after the end of the gzip stream");
            if (inflateReset(&s) != Z_OK) return fail("cannot restart gzip decompression");
            continue;
        }
        if (rc == Z_OK) continue;
        if (rc == Z_BUF_ERROR && (s.avail_in != 0 || offset < input_.size())) continue;
        if (rc == Z_BUF_ERROR) return fail("the gzip data is truncated");
        if (rc == Z_MEM_ERROR) return fail("out of memory decompressing gzip data");
        return fail(std::string("the gzip data is corrupt: ") + (s.msg ? s.msg : "inflate failed"));
    }

    const std::size_t n = out_.size() - s.avail_out;
    produced_ += n;
    if (produced_ > max_bytes_)
        return fail("the tar data inflates to more than " + std::to_string(max_bytes_) +
                    " bytes, more than the extraction limits allow");
    *buffer = out_.data();
    return static_cast<la_ssize_t>(n);
}

void TarStream::finish() {
    const void* ignored = nullptr;
    if (gzip_) {
        la_ssize_t n;
        while ((n = next(&ignored)) > 0) {
        }
    }
    if (!error_.empty()) throw ArchiveError("archive refused (after its last entry): " + error_);
}

}  // namespace keel::market::detail
