#pragma once
// A sequential byte reader over a file that is inflated on the fly when it starts with the gzip magic
// 0x1f 0x8b. Data sets are shipped both ways (Debian gzips them, many mirrors do not), and file names
// lie, so the content decides. Streaming (rather than inflating the whole file first) lets the IDX
// reader report "truncated after X of Y expected bytes" and never allocate more than the data holds.
// The bytes come from a file or from memory (a download, a fuzzer's input); the name is used in messages either way.
#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnn/io/file.hpp"

namespace fnn::io {

class byte_source final {
 public:
  explicit byte_source(std::filesystem::path path) : path_(std::move(path)), file_(detail::open_for_reading(path_)) {
    start();
  }
  byte_source(std::span<const std::byte> bytes, std::filesystem::path name) : path_(std::move(name)), memory_(bytes) {
    start();
  }
  ~byte_source() {
    if (inflating_) inflateEnd(&z_);
  }
  byte_source(const byte_source&) = delete;
  byte_source& operator=(const byte_source&) = delete;

  // Fills dst as far as the data goes: a short count means the data ended (cleanly, or see truncated()).
  // Corrupt compressed data throws io_error.
  std::size_t read(std::span<std::byte> dst) {
    std::size_t total = 0;
    while (total < dst.size()) {
      // zlib counts in uInt; split huge requests.
      const std::size_t want = std::min<std::size_t>(dst.size() - total, std::size_t{1} << 30);
      const std::size_t got = gzip_ ? read_gzip(dst.subspan(total, want)) : read_raw(dst.subspan(total, want));
      total += got;
      if (got < want) break;
    }
    delivered_ += total;
    return total;
  }

  bool gzipped() const noexcept { return gzip_; }
  // The gzip data ended before the end-of-stream marker and its CRC trailer.
  bool truncated() const noexcept { return truncated_; }
  // Bytes delivered so far (decompressed when gzipped): the offset of the next byte in the data.
  std::uint64_t offset() const noexcept { return delivered_; }
  // Bytes of the file consumed so far (the compressed offset when gzipped).
  std::uint64_t file_offset() const noexcept {
    return gzip_ ? consumed_ - z_.avail_in : consumed_ - (in_len_ - in_pos_);
  }
  const std::filesystem::path& path() const noexcept { return path_; }
  // The size of the input as stored (compressed when gzipped).
  std::uint64_t stored_size() const { return file_ ? detail::file_size(path_) : memory_.size(); }

 private:
  static constexpr std::size_t chunk_size = std::size_t{1} << 16;

  void start() {
    in_.resize(chunk_size);
    in_len_ = pull(in_.data(), in_.size());
    consumed_ = in_len_;
    gzip_ = in_len_ >= 2 && in_[0] == 0x1f && in_[1] == 0x8b;
    if (gzip_) start_inflate();
  }

  // Up to n more bytes of the stored input; short only at its end.
  std::size_t pull(void* dst, std::size_t n) {
    if (file_) return detail::read_some(file_.get(), path_, dst, n);
    const std::size_t got = std::min(n, memory_.size() - memory_pos_);
    if (got > 0) std::memcpy(dst, memory_.data() + memory_pos_, got);
    memory_pos_ += got;
    return got;
  }

  void start_inflate() {
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(in_len_);
    // 15 + 16: 32 KiB window, expect a gzip (not zlib) wrapper with its CRC-32 and length trailer.
    if (inflateInit2(&z_, 15 + 16) != Z_OK) detail::fail(path_, "cannot initialise zlib");
    inflating_ = true;
  }

  std::size_t read_raw(std::span<std::byte> dst) {
    std::size_t got = std::min(dst.size(), in_len_ - in_pos_);
    std::copy_n(in_.data() + in_pos_, got, reinterpret_cast<unsigned char*>(dst.data()));
    in_pos_ += got;
    if (got < dst.size()) {
      const std::size_t more = pull(dst.data() + got, dst.size() - got);
      consumed_ += more;
      got += more;
    }
    return got;
  }

  bool refill() {
    in_len_ = pull(in_.data(), in_.size());
    consumed_ += in_len_;
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(in_len_);
    return in_len_ > 0;
  }

  std::size_t read_gzip(std::span<std::byte> dst) {
    z_.next_out = reinterpret_cast<Bytef*>(dst.data());
    z_.avail_out = static_cast<uInt>(dst.size());
    while (z_.avail_out > 0 && !stream_end_) {
      if (z_.avail_in == 0 && !refill()) {
        truncated_ = true;
        break;
      }
      const int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        next_member();
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        corrupt(rc, dst.size() - z_.avail_out);
      }
    }
    return dst.size() - z_.avail_out;
  }

  // gzip allows several members back to back (what `cat a.gz b.gz` makes); anything else after the
  // end of a member is not gzip data and is rejected rather than silently ignored.
  void next_member() {
    if (z_.avail_in == 0 && !refill()) {
      stream_end_ = true;
      return;
    }
    if (z_.next_in[0] != 0x1f)
      detail::fail(path_, "unexpected data after the end of the gzip stream at compressed byte offset " +
                              std::to_string(file_offset()));
    inflateReset(&z_);
  }

  [[noreturn]] void corrupt(int rc, std::size_t produced_now) const {
    const char* why = z_.msg != nullptr ? z_.msg : (rc == Z_MEM_ERROR ? "out of memory" : "zlib error");
    detail::fail(path_, "corrupt gzip stream at compressed byte offset " + std::to_string(file_offset()) + " (after " +
                            std::to_string(delivered_ + produced_now) + " decompressed bytes): " + why);
  }

  std::filesystem::path path_;
  detail::file_ptr file_;               // null when reading from memory_
  std::span<const std::byte> memory_;
  std::size_t memory_pos_ = 0;
  std::vector<unsigned char> in_;
  std::size_t in_len_ = 0;
  std::size_t in_pos_ = 0;  // raw mode only: next unread byte of in_
  std::uint64_t consumed_ = 0;
  std::uint64_t delivered_ = 0;
  z_stream z_{};
  bool gzip_ = false;
  bool inflating_ = false;
  bool stream_end_ = false;
  bool truncated_ = false;
};

}  // namespace fnn::io
