#pragma once
// IDX files (the format of MNIST and its look-alikes): two zero bytes, a type code, the number of
// dimensions, that many big-endian uint32 sizes, then the big-endian payload. Raw or gzip'd.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/io/file.hpp"
#include "fnn/io/gzip.hpp"

namespace fnn::io {

enum class idx_type : std::uint8_t { u8 = 0x08, i8 = 0x09, i16 = 0x0B, i32 = 0x0C, f32 = 0x0D, f64 = 0x0E };

inline std::size_t idx_type_size(idx_type t) noexcept {
  switch (t) {
    case idx_type::u8:
    case idx_type::i8:
      return 1;
    case idx_type::i16:
      return 2;
    case idx_type::i32:
    case idx_type::f32:
      return 4;
    case idx_type::f64:
      return 8;
  }
  return 0;
}

inline std::string_view idx_type_name(idx_type t) noexcept {
  switch (t) {
    case idx_type::u8:
      return "u8";
    case idx_type::i8:
      return "i8";
    case idx_type::i16:
      return "i16";
    case idx_type::i32:
      return "i32";
    case idx_type::f32:
      return "f32";
    case idx_type::f64:
      return "f64";
  }
  return "?";
}

template <class T>
inline constexpr idx_type idx_type_of = [] {
  if constexpr (std::is_same_v<T, std::uint8_t>)
    return idx_type::u8;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return idx_type::i8;
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return idx_type::i16;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return idx_type::i32;
  else if constexpr (std::is_same_v<T, float>)
    return idx_type::f32;
  else if constexpr (std::is_same_v<T, double>)
    return idx_type::f64;
  else
    static_assert(sizeof(T) == 0, "fnn: IDX holds only u8, i8, i16, i32, f32, f64");
}();

// A whole IDX file: its element type, its dimensions, and its payload in native byte order.
struct idx_array {
  idx_type type = idx_type::u8;
  std::vector<std::size_t> dims;
  buffer<std::byte> data;  // aligned; large payloads go on huge pages (core/tensor.hpp)

  std::size_t size() const noexcept { return data.size() / idx_type_size(type); }

  template <class T>
  std::vector<T> values() const {
    if (idx_type_of<T> != type)
      throw value_error("IDX data holds " + std::string(idx_type_name(type)) + ", requested as " +
                        std::string(idx_type_name(idx_type_of<T>)));
    std::vector<T> out(size());
    if (!out.empty()) std::memcpy(out.data(), data.data(), data.size());
    return out;
  }
};

inline std::string dims_text(std::span<const std::size_t> dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

namespace detail {

inline std::string hex_byte(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v & 0xffu);
  return buf;
}

inline bool known_idx_type(std::uint8_t code) {
  return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D || code == 0x0E;
}

inline std::uint32_t load_be32(const std::byte* p) noexcept {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) | (std::to_integer<std::uint32_t>(p[1]) << 16) |
         (std::to_integer<std::uint32_t>(p[2]) << 8) | std::to_integer<std::uint32_t>(p[3]);
}

inline void big_endian_to_native(std::span<std::byte> data, std::size_t elem) {
  if constexpr (std::endian::native == std::endian::little) {
    if (elem > 1)
      for (std::size_t i = 0; i < data.size(); i += elem) std::reverse(data.begin() + i, data.begin() + i + elem);
  }
}

// Reads exactly n header bytes or reports how far the header got.
inline void read_idx_header_bytes(byte_source& src, std::span<std::byte> dst, std::string_view what) {
  const std::uint64_t at = src.offset();
  const std::size_t got = src.read(dst);
  if (got < dst.size())
    fail(src.path(), "truncated IDX header: " + std::string(what) + " at offset " + std::to_string(at) + " needs " +
                         std::to_string(dst.size()) + " bytes, the " + (src.gzipped() ? "decompressed data" : "file") +
                         " ends after " + std::to_string(at + got) +
                         (src.truncated() ? " (truncated gzip stream)" : ""));
}

inline idx_array read_idx_header(byte_source& src) {
  std::byte magic[4];
  read_idx_header_bytes(src, magic, "the 4-byte magic");
  const auto code = std::to_integer<std::uint8_t>(magic[2]);
  const auto ndims = std::to_integer<std::uint8_t>(magic[3]);
  if (magic[0] != std::byte{0} || magic[1] != std::byte{0}) {
    std::string hex;
    for (std::byte b : magic) hex += hex_byte(std::to_integer<unsigned>(b)) + " ";
    fail(src.path(), "bad IDX magic " + hex + "at offset 0: the first two bytes must be zero");
  }
  if (!known_idx_type(code))
    fail(src.path(), "unsupported IDX type code " + hex_byte(code) +
                         " at offset 2 (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)");
  if (ndims == 0) fail(src.path(), "IDX number of dimensions at offset 3 is 0");
  idx_array a;
  a.type = static_cast<idx_type>(code);
  std::vector<std::byte> raw(4 * std::size_t{ndims});
  read_idx_header_bytes(src, raw, "the " + std::to_string(ndims) + " dimension sizes");
  for (std::size_t d = 0; d < ndims; ++d) {
    a.dims.push_back(load_be32(raw.data() + 4 * d));
    if (a.dims.back() == 0)
      fail(src.path(), "IDX dimension " + std::to_string(d) + " (at offset " + std::to_string(4 + 4 * d) + ") is 0");
  }
  return a;
}

inline std::size_t idx_payload_bytes(const idx_array& a, const std::filesystem::path& path) {
  std::size_t n = idx_type_size(a.type);
  for (std::size_t d : a.dims) {
    if (n > SIZE_MAX / d) fail(path, "IDX dimensions " + dims_text(a.dims) + " overflow the address space");
    n *= d;
  }
  return n;
}

inline std::string idx_claim(const idx_array& a, std::size_t expected) {
  return "the header says " + dims_text(a.dims) + " of " + std::string(idx_type_name(a.type)) + " = " +
         std::to_string(expected) + " bytes";
}

[[noreturn]] inline void idx_truncated(const byte_source& src, const idx_array& a, std::size_t got,
                                       std::size_t expected, std::size_t header) {
  if (src.truncated())
    fail(src.path(), "truncated gzip stream after " + std::to_string(got) + " bytes of " + std::to_string(expected) +
                         " expected (IDX payload: " + idx_claim(a, expected) + "; the compressed data ends at byte " +
                         std::to_string(src.file_offset()) + ")");
  fail(src.path(), "truncated IDX payload: " + idx_claim(a, expected) + ", the " +
                       (src.gzipped() ? "decompressed data" : "file") + " ends after " + std::to_string(got) +
                       " of them (at offset " + std::to_string(header + got) + ")");
}

// Reads the payload in steps, growing the buffer only as data actually arrives, so that a forged header (2^31
// images in front of a real body) fails on the missing data instead of allocating what it claims. A raw file
// was checked against its size before, so its payload is reserved exactly. A gzip'd one starts with room for 8
// times the compressed size (MNIST's ratio is 4.8, Fashion-MNIST's 1.8: honest files are read without
// reallocation) and doubles when full, never beyond what the header claims: a forged header costs at most
// twice the data that is really there.
inline void read_idx_payload(byte_source& src, idx_array& a, std::size_t expected) {
  const std::size_t header = static_cast<std::size_t>(src.offset());
  const std::uint64_t stored = src.stored_size();
  const std::uint64_t start = src.gzipped() ? (stored > UINT64_MAX / 8 ? UINT64_MAX : stored * 8) : expected;
  constexpr std::size_t step = std::size_t{1} << 24;
  constexpr std::size_t least = std::size_t{1} << 16;
  std::size_t got = 0;
  try {
    a.data.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected, start)));
    while (got < expected) {
      if (got == a.data.capacity()) a.data.reserve(std::min(expected, std::max(2 * got, least)));
      const std::size_t want = std::min({step, expected - got, a.data.capacity() - got});
      a.data.resize(got + want);
      const std::size_t n = src.read(std::span(a.data).subspan(got, want));
      got += n;
      if (n < want) idx_truncated(src, a, got, expected, header);
    }
  } catch (const std::bad_alloc&) {
    fail(src.path(), "out of memory after " + std::to_string(got) + " bytes of the IDX payload (" +
                         idx_claim(a, expected) + ")");
  }
}

// Reads past the payload: drains the rest so that a corrupt gzip tail (bad CRC) is reported as corruption,
// then complains about any extra byte.
inline void check_idx_end(byte_source& src, std::size_t header, std::size_t expected) {
  std::vector<std::byte> sink(std::size_t{1} << 16);
  std::uint64_t extra = 0;
  for (std::size_t n; (n = src.read(sink)) > 0;) extra += n;
  if (extra > 0)
    fail(src.path(), std::to_string(extra) + " trailing bytes after the IDX payload, which ends at offset " +
                         std::to_string(header + expected) + (src.gzipped() ? " of the decompressed data" : ""));
  if (src.truncated())
    fail(src.path(),
         "truncated gzip stream: the IDX payload is complete but the gzip end-of-stream and CRC trailer "
         "are missing (compressed data ends at byte " +
             std::to_string(src.file_offset()) + ")");
}

inline idx_array read_idx_from(byte_source& src) {
  idx_array a = read_idx_header(src);
  const std::size_t header = static_cast<std::size_t>(src.offset());
  const std::size_t expected = idx_payload_bytes(a, src.path());
  if (!src.gzipped()) {
    // The size is known up front: report a short raw file before allocating for it.
    const std::uint64_t size = src.stored_size();
    if (size < header + expected) idx_truncated(src, a, static_cast<std::size_t>(size) - header, expected, header);
  }
  read_idx_payload(src, a, expected);
  check_idx_end(src, header, expected);
  big_endian_to_native(a.data, idx_type_size(a.type));
  return a;
}

}  // namespace detail

// Reads a whole IDX file, raw or gzip'd (decided by the 0x1f 0x8b magic). Any defect throws io_error naming
// the file and the offset: nothing partial is ever returned.
inline idx_array read_idx(const std::filesystem::path& path) {
  return detail::naming_the_input(path, [&] {
    byte_source src(path);
    return detail::read_idx_from(src);
  });
}

// The same on an IDX image in memory (raw or gzip'd); name stands for the file in messages.
inline idx_array parse_idx(std::span<const std::byte> bytes, const std::filesystem::path& name) {
  return detail::naming_the_input(name, [&] {
    byte_source src(bytes, name);
    return detail::read_idx_from(src);
  });
}

}  // namespace fnn::io
