#pragma once
// Writing safetensors files atomically: a crash or a full disk never leaves a half-written checkpoint
// where the previous good one was. POSIX only (open/fsync/rename).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include "fnn/core/errors.hpp"
#include "fnn/io/file.hpp"
#include "fnn/io/json.hpp"
#include "fnn/io/safetensors.hpp"

namespace fnn::io {
namespace detail {

// A temporary file next to the target; it deletes itself unless it was renamed onto the target.
class temp_file final {
 public:
  explicit temp_file(const std::filesystem::path& target) : target_(target) {
    static std::atomic<unsigned> counter{0};
    const auto noise = std::chrono::steady_clock::now().time_since_epoch().count() & 0xFFFFF;
    for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
      path_ = target.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
              std::to_string(noise);
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ < 0 && errno != EEXIST) break;
    }
    if (fd_ < 0) fail(target_, "cannot create a temporary file " + path_ + " for writing: " + errno_text(errno));
  }
  ~temp_file() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(path_.c_str());
  }
  temp_file(const temp_file&) = delete;
  temp_file& operator=(const temp_file&) = delete;

  void write(std::span<const std::byte> data) {
    const std::byte* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      const ::ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        fail(target_,
             "write to " + path_ + " failed at byte offset " + std::to_string(written_) + ": " + errno_text(errno));
      p += n, left -= static_cast<std::size_t>(n), written_ += static_cast<std::uint64_t>(n);
    }
  }

  // fsync before rename: otherwise a crash can leave the new name pointing at data that never reached the disk.
  void commit() {
    if (::fsync(fd_) != 0) fail(target_, "fsync of " + path_ + " failed: " + errno_text(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(target_, "close of " + path_ + " failed: " + errno_text(errno));
    if (std::rename(path_.c_str(), target_.c_str()) != 0)
      fail(target_, "cannot rename " + path_ + " over it: " + errno_text(errno));
    committed_ = true;
    sync_directory();
  }

 private:
  // Makes the rename itself durable; best effort, the data is already safe under one of the two names.
  void sync_directory() const noexcept {
    const auto dir = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      (void)::fsync(fd);
      ::close(fd);
    }
  }

  std::filesystem::path target_;
  std::string path_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

inline void check_entries(const std::filesystem::path& path, std::span<const tensor_entry> tensors) {
  std::set<std::string_view> names;
  for (const auto& t : tensors) {
    const std::string where = path.string() + ": tensor '" + t.name + "': ";
    if (t.name.empty() || t.name == "__metadata__")
      throw value_error(path.string() + ": invalid tensor name '" + t.name + "'");
    if (!names.insert(t.name).second) throw value_error(path.string() + ": duplicate tensor name '" + t.name + "'");
    const auto n = t.numel();
    if (!n) throw shape_error(where + "invalid shape " + shape_text(t.shape));
    if (*n > UINT64_MAX / dtype_size(t.type) || *n * dtype_size(t.type) != t.bytes.size())
      throw shape_error(where + "shape " + shape_text(t.shape) + " of " + std::string(dtype_name(t.type)) + " needs " +
                        std::to_string(*n) + " x " + std::to_string(dtype_size(t.type)) + " bytes, got " +
                        std::to_string(t.bytes.size()));
  }
}

// The JSON header, padded with spaces to a multiple of 8 bytes (as the reference writer does) so that
// the data section, and every tensor in it that starts at a multiple of 8, is 8-byte aligned when mapped.
inline std::string safetensors_header(std::span<const tensor_entry> tensors, const metadata& meta) {
  json::object root;
  if (!meta.empty()) {
    json::object m;
    for (const auto& [k, v] : meta) m.emplace_back(k, v);
    root.emplace_back("__metadata__", std::move(m));
  }
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    json::array shape;
    for (std::int64_t d : t.shape) shape.push_back(json::value::integer(static_cast<std::uint64_t>(d)));
    json::array offsets{json::value::integer(offset), json::value::integer(offset + t.bytes.size())};
    offset += t.bytes.size();
    root.emplace_back(t.name, json::object{{"dtype", std::string(dtype_name(t.type))},
                                           {"shape", std::move(shape)},
                                           {"data_offsets", std::move(offsets)}});
  }
  std::string header = json::dump(root);
  header.append((8 - header.size() % 8) % 8, ' ');
  return header;
}

}  // namespace detail

// Replaces the file at path with `bytes`, atomically (temporary file next to it, fsync, rename): after a crash
// or a failed write (full disk, read-only directory: io_error naming the file) the previous content is intact.
inline void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  detail::temp_file out(path);
  out.write(std::as_bytes(std::span(bytes)));
  out.commit();
}

// Writes the tensors (in the given order) and the metadata to path, atomically: the data goes to a unique
// temporary file next to path, is fsync'ed, then renamed over path. On any failure the temporary file is
// removed, the previous file at path is untouched, and io_error (or value_error/shape_error for bad
// entries, before anything is written) is thrown.
inline void write_safetensors(const std::filesystem::path& path, std::span<const tensor_entry> tensors,
                              const metadata& meta = {}) {
  detail::check_entries(path, tensors);
  const std::string header = detail::safetensors_header(tensors, meta);
  std::byte length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<std::byte>((header.size() >> (8 * i)) & 0xFF);
  detail::temp_file out(path);
  out.write(length);
  out.write(std::as_bytes(std::span(header)));
  for (const auto& t : tensors) out.write(t.bytes);
  out.commit();
}

}  // namespace fnn::io
