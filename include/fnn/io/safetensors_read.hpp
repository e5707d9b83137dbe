#pragma once
// Reading safetensors files with the reference implementation's checks, each reported with the file name
// and the offending tensor, offset or size: a checkpoint that loads is a checkpoint that is whole.
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <new>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/io/file.hpp"
#include "fnn/io/json.hpp"
#include "fnn/io/safetensors.hpp"

namespace fnn::io {
namespace detail {

// The reference implementation refuses larger headers; so do we, before allocating for one.
inline constexpr std::uint64_t max_safetensors_header = 100'000'000;
// A 100 MB header could hold 50 million values ("0,0,0,..."): some 2 GB of parsed JSON. 2^21 values bound the
// parse to ~100 MB and a fraction of a second, while leaving room for 200 000 tensors of rank 4 or as many
// metadata entries (real checkpoints hold hundreds to a few thousand tensors and a few dozen metadata keys).
// The legal structure is 3 levels deep (header, tensor, shape); the parser's 64 keeps room for unknown members.
inline constexpr json::parse_limits safetensors_header_limits{.max_depth = 64, .max_values = std::size_t{1} << 21};

struct tensor_span {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

inline std::uint64_t json_u64(const json::value& v, const std::filesystem::path& path, const std::string& where) {
  const auto n = v.is_number() ? json::to_u64(v.as_number()) : std::nullopt;
  if (!n)
    fail(path, where + " must be a non-negative integer, got " +
                   (v.is_number() ? v.as_number().text : std::string(v.kind_name())));
  return *n;
}

inline const json::value& member(const json::value& obj, std::string_view key, const std::filesystem::path& path,
                                 const std::string& where) {
  const json::value* v = obj.find(key);
  if (v == nullptr) fail(path, where + "has no \"" + std::string(key) + "\"");
  return *v;
}

inline metadata parse_metadata(const json::value& v, const std::filesystem::path& path) {
  if (!v.is_object()) fail(path, "\"__metadata__\" must be an object, got " + std::string(v.kind_name()));
  metadata meta;
  for (const auto& [k, s] : v.as_object()) {
    if (!s.is_string())
      fail(path, "\"__metadata__\" value of \"" + k + "\" must be a string, got " + std::string(s.kind_name()));
    meta.emplace(k, s.as_string());
  }
  return meta;
}

// One header member: its dtype, shape and offsets checked against each other and against the data size.
inline tensor_span parse_tensor_info(const std::string& name, const json::value& info, std::uint64_t data_size,
                                     const std::filesystem::path& path, tensor_entry& e) {
  const std::string where = "tensor '" + name + "' ";
  if (!info.is_object()) fail(path, where + "must be an object, got " + std::string(info.kind_name()));
  const json::value& type = member(info, "dtype", path, where);
  const auto t = type.is_string() ? dtype_from_name(type.as_string()) : std::nullopt;
  if (!t)
    fail(path, where + "has unknown dtype " + (type.is_string() ? "'" + type.as_string() + "'" : json::dump(type)));
  e.name = name;
  e.type = *t;
  const json::value& shape = member(info, "shape", path, where);
  if (!shape.is_array()) fail(path, where + "shape must be an array");
  for (const auto& d : shape.as_array()) {
    const std::uint64_t u = json_u64(d, path, where + "shape entry");
    if (u > static_cast<std::uint64_t>(INT64_MAX))
      fail(path, where + "shape entry " + d.as_number().text + " is too large");
    e.shape.push_back(static_cast<std::int64_t>(u));
  }
  const json::value& offsets = member(info, "data_offsets", path, where);
  if (!offsets.is_array() || offsets.as_array().size() != 2) fail(path, where + "data_offsets must be [begin, end]");
  const tensor_span s{json_u64(offsets.as_array()[0], path, where + "data_offsets begin"),
                      json_u64(offsets.as_array()[1], path, where + "data_offsets end")};
  const std::string range = "data_offsets [" + std::to_string(s.begin) + ", " + std::to_string(s.end) + "]";
  if (s.begin > s.end || s.end > data_size)
    fail(path, where + range + " are out of bounds of the " + std::to_string(data_size) + "-byte data section");
  const auto n = e.numel();
  const std::uint64_t size = dtype_size(e.type);
  if (!n || *n > UINT64_MAX / size || *n * size != s.end - s.begin)
    fail(path, where + range + " hold " + std::to_string(s.end - s.begin) + " bytes, but shape " + shape_text(e.shape) +
                   " of " + std::string(dtype_name(e.type)) + " needs " +
                   (n ? std::to_string(*n) + " x " : "overflowing ") + std::to_string(size));
  return s;
}

// Every byte of the data section must belong to exactly one tensor (the reference's rule): an overlap
// would alias two tensors, a gap or a tail would be bytes nobody can account for, which is how a
// truncated or spliced file looks.
inline void check_coverage(const std::vector<tensor_entry>& es, const std::vector<tensor_span>& spans,
                           std::uint64_t data_size, const std::filesystem::path& path) {
  std::vector<std::size_t> order(spans.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return spans[a].begin != spans[b].begin ? spans[a].begin < spans[b].begin : spans[a].end < spans[b].end;
  });
  std::uint64_t cursor = 0;
  std::string previous = "the start of the data section";
  for (std::size_t i : order) {
    const std::string at = "tensor '" + es[i].name + "' data_offsets begin at " + std::to_string(spans[i].begin);
    if (spans[i].begin < cursor)
      fail(path, at + ", overlapping " + previous + " which ends at " + std::to_string(cursor));
    if (spans[i].begin > cursor)
      fail(path, at + ", leaving a gap after " + previous + " (data bytes [" + std::to_string(cursor) + ", " +
                     std::to_string(spans[i].begin) + ") belong to no tensor)");
    cursor = spans[i].end;
    previous = "tensor '" + es[i].name + "'";
  }
  if (cursor != data_size)
    fail(path, std::to_string(data_size - cursor) +
                   " trailing bytes in the data section belong to no tensor (data bytes [" + std::to_string(cursor) +
                   ", " + std::to_string(data_size) + "))");
}

// A safetensors input read at given offsets: a file, or bytes already in memory (a download, a fuzzer's input).
// read(at, dst, n) returns how many bytes it got, fewer only at the end of the input.
class safetensors_input {
 public:
  virtual ~safetensors_input() = default;
  virtual std::size_t read(std::uint64_t at, void* dst, std::size_t n) = 0;
};

class safetensors_file_input final : public safetensors_input {
 public:
  safetensors_file_input(std::FILE* f, const std::filesystem::path& path) : f_(f), path_(path) {}
  std::size_t read(std::uint64_t at, void* dst, std::size_t n) override {
    if (at > static_cast<std::uint64_t>(LONG_MAX) || std::fseek(f_, static_cast<long>(at), SEEK_SET) != 0)
      fail(path_, "cannot seek to byte offset " + std::to_string(at) + ": " + errno_text(errno));
    return read_some(f_, path_, dst, n);
  }

 private:
  std::FILE* f_;
  const std::filesystem::path& path_;
};

class safetensors_memory_input final : public safetensors_input {
 public:
  explicit safetensors_memory_input(std::span<const std::byte> bytes) : bytes_(bytes) {}
  std::size_t read(std::uint64_t at, void* dst, std::size_t n) override {
    if (at >= bytes_.size()) return 0;
    const std::size_t got = std::min<std::size_t>(n, bytes_.size() - static_cast<std::size_t>(at));
    if (got > 0) std::memcpy(dst, bytes_.data() + at, got);
    return got;
  }

 private:
  std::span<const std::byte> bytes_;
};

inline std::string read_safetensors_header(safetensors_input& in, const std::filesystem::path& path,
                                           std::uint64_t size) {
  if (size < 8)
    fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte safetensors header length");
  unsigned char len[8];
  if (in.read(0, len, 8) != 8) fail(path, "file shrank while reading the header length");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len[i];
  if (n > size - 8)
    fail(path, "header length " + std::to_string(n) + " (bytes 0-7) exceeds the " + std::to_string(size - 8) +
                   " bytes that follow");
  if (n > max_safetensors_header)
    fail(path,
         "header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_safetensors_header));
  std::string header(static_cast<std::size_t>(n), '\0');
  if (in.read(8, header.data(), header.size()) != header.size()) fail(path, "file shrank while reading the header");
  return header;
}

inline void read_tensor_data(safetensors_input& in, const std::filesystem::path& path, std::uint64_t data_start,
                             std::vector<tensor_entry>& es, const std::vector<tensor_span>& spans) {
  for (std::size_t i = 0; i < es.size(); ++i) {
    const std::uint64_t at = data_start + spans[i].begin;
    const auto n = static_cast<std::size_t>(spans[i].end - spans[i].begin);
    try {
      es[i].bytes.resize(n);
    } catch (const std::bad_alloc&) {
      fail(path, "out of memory allocating " + std::to_string(n) + " bytes for tensor '" + es[i].name + "'");
    }
    if (n > 0 && in.read(at, es[i].bytes.data(), n) != n)
      fail(path, "cannot read tensor '" + es[i].name + "' at byte offset " + std::to_string(at) + " (file shrank?)");
  }
}

inline safetensors_file read_safetensors_from(safetensors_input& in, std::uint64_t size,
                                              const std::filesystem::path& path) {
  const std::string header = read_safetensors_header(in, path, size);
  const std::uint64_t data_size = size - 8 - header.size();
  json::value root;
  try {
    root = json::parse(header, 8, safetensors_header_limits);
  } catch (const value_error& e) {
    fail(path, std::string(e.what()).substr(5) + " (in the header)");  // drop the inner "fnn: "
  }
  if (!root.is_object()) fail(path, "header must be a JSON object, got " + std::string(root.kind_name()));
  safetensors_file out;
  out.path = path;
  std::vector<tensor_span> spans;
  for (const auto& [name, info] : root.as_object()) {
    if (name == "__metadata__") {
      out.metadata = parse_metadata(info, path);
      continue;
    }
    out.tensors.emplace_back();
    spans.push_back(parse_tensor_info(name, info, data_size, path, out.tensors.back()));
  }
  check_coverage(out.tensors, spans, data_size, path);
  read_tensor_data(in, path, 8 + header.size(), out.tensors, spans);
  return out;
}

}  // namespace detail

// Reads and validates a whole safetensors file; tensors keep the header's order. Any defect throws io_error
// naming the file and what is wrong; nothing partial is returned.
inline safetensors_file read_safetensors(const std::filesystem::path& path) {
  return detail::naming_the_input(path, [&] {
    const auto f = detail::open_for_reading(path);
    detail::safetensors_file_input in(f.get(), path);
    return detail::read_safetensors_from(in, detail::file_size(path), path);
  });
}

// The same checks on a safetensors image in memory; name stands for the file in messages and in the result.
inline safetensors_file parse_safetensors(std::span<const std::byte> bytes, const std::filesystem::path& name) {
  return detail::naming_the_input(name, [&] {
    detail::safetensors_memory_input in(bytes);
    return detail::read_safetensors_from(in, bytes.size(), name);
  });
}

}  // namespace fnn::io
