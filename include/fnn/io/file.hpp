#pragma once
// stdio helpers shared by io/: every failure becomes an fnn::io_error whose message starts with the path,
// so a user with ten checkpoints open knows which one is broken.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include "fnn/core/errors.hpp"

namespace fnn::io::detail {

[[noreturn]] inline void fail(const std::filesystem::path& path, const std::string& what) {
  throw io_error(path.string() + ": " + what);
}

inline std::string errno_text(int err) { return std::generic_category().message(err); }

struct file_closer {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using file_ptr = std::unique_ptr<std::FILE, file_closer>;

inline file_ptr open_for_reading(const std::filesystem::path& path) {
  std::error_code ec;
  // fopen succeeds on a directory on Linux and the first fread fails with EISDIR; say it plainly instead.
  if (std::filesystem::is_directory(path, ec)) fail(path, "is a directory, expected a file");
  file_ptr f{std::fopen(path.c_str(), "rb")};
  if (!f) fail(path, "cannot open for reading: " + errno_text(errno));
  return f;
}

// Reads up to n bytes; the count is short only at end of file, a read error throws.
inline std::size_t read_some(std::FILE* f, const std::filesystem::path& path, void* dst, std::size_t n) {
  const std::size_t got = std::fread(dst, 1, n, f);
  if (got < n && std::ferror(f)) fail(path, "read error: " + errno_text(errno));
  return got;
}

inline std::uint64_t file_size(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot get the file size: " + ec.message());
  return size;
}

// Runs a reader so that even an allocation failure names the input: a std::bad_alloc that escaped on its own
// would leave a user with ten data files open guessing which one is forged.
template <class F>
auto naming_the_input(const std::filesystem::path& path, F&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const std::bad_alloc&) {
    fail(path, "out of memory while reading it");
  } catch (const std::length_error& e) {
    fail(path, std::string("a size beyond what this program can hold while reading it (") + e.what() + ")");
  }
}

}  // namespace fnn::io::detail
