#pragma once
// safetensors checkpoints (the format of Hugging Face and, through it, of most PyTorch models):
//   8-byte little-endian header length N | N bytes of UTF-8 JSON | data section.
// The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the data section) and may hold "__metadata__": {string: string}. Tensors are little-endian, C order.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/io/file.hpp"
#include "fnn/io/json.hpp"

namespace fnn::io {

enum class dtype : std::uint8_t {
  boolean,
  u8,
  i8,
  f8_e4m3,
  f8_e5m2,
  u16,
  i16,
  f16,
  bf16,
  u32,
  i32,
  f32,
  u64,
  i64,
  f64
};

namespace detail {
struct dtype_info {
  dtype type;
  std::string_view name;
  std::size_t size;
};
inline constexpr dtype_info dtype_table[] = {
    {dtype::boolean, "BOOL", 1},    {dtype::u8, "U8", 1},   {dtype::i8, "I8", 1},   {dtype::f8_e4m3, "F8_E4M3", 1},
    {dtype::f8_e5m2, "F8_E5M2", 1}, {dtype::u16, "U16", 2}, {dtype::i16, "I16", 2}, {dtype::f16, "F16", 2},
    {dtype::bf16, "BF16", 2},       {dtype::u32, "U32", 4}, {dtype::i32, "I32", 4}, {dtype::f32, "F32", 4},
    {dtype::u64, "U64", 8},         {dtype::i64, "I64", 8}, {dtype::f64, "F64", 8}};
// dtype_name and dtype_size index the table by enumerator value.
static_assert([] {
  for (std::size_t i = 0; i < std::size(dtype_table); ++i)
    if (static_cast<std::size_t>(dtype_table[i].type) != i) return false;
  return true;
}());
}  // namespace detail

inline std::string_view dtype_name(dtype t) noexcept { return detail::dtype_table[static_cast<int>(t)].name; }
inline std::size_t dtype_size(dtype t) noexcept { return detail::dtype_table[static_cast<int>(t)].size; }
inline std::optional<dtype> dtype_from_name(std::string_view name) noexcept {
  for (const auto& d : detail::dtype_table)
    if (d.name == name) return d.type;
  return std::nullopt;
}

// The safetensors dtype that stores a C++ type as is.
template <class T>
inline constexpr dtype dtype_of = [] {
  if constexpr (std::is_same_v<T, float>)
    return dtype::f32;
  else if constexpr (std::is_same_v<T, double>)
    return dtype::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return dtype::i64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return dtype::i32;
  else if constexpr (std::is_same_v<T, std::int16_t>)
    return dtype::i16;
  else if constexpr (std::is_same_v<T, std::int8_t>)
    return dtype::i8;
  else if constexpr (std::is_same_v<T, std::uint64_t>)
    return dtype::u64;
  else if constexpr (std::is_same_v<T, std::uint32_t>)
    return dtype::u32;
  else if constexpr (std::is_same_v<T, std::uint16_t>)
    return dtype::u16;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return dtype::u8;
  else
    static_assert(sizeof(T) == 0, "fnn: no safetensors dtype stores this type as is");
}();

inline std::string shape_text(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One named tensor as stored: raw little-endian bytes, so any dtype (F16, BF16, ...) passes through untouched.
struct tensor_entry {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;  // empty = a scalar (rank 0, one element)
  std::vector<std::byte> bytes;

  // Element count; nullopt when a dimension is negative or the product overflows.
  std::optional<std::uint64_t> numel() const noexcept {
    std::uint64_t n = 1;
    for (std::int64_t d : shape) {
      if (d < 0) return std::nullopt;
      const auto u = static_cast<std::uint64_t>(d);
      if (u != 0 && n > UINT64_MAX / u) return std::nullopt;
      n *= u;
    }
    return n;
  }
};

using metadata = std::map<std::string, std::string>;

namespace detail {
// safetensors is little-endian; on a big-endian host every element is byte-reversed on the way in and out.
inline void swap_if_big_endian(std::span<std::byte> bytes, std::size_t elem) {
  if constexpr (std::endian::native == std::endian::big) {
    if (elem > 1)
      for (std::size_t i = 0; i < bytes.size(); i += elem) std::reverse(bytes.begin() + i, bytes.begin() + i + elem);
  } else {
    (void)bytes, (void)elem;
  }
}
}  // namespace detail

// Makes an entry from values in C order; the shape must hold exactly values.size() elements.
template <class T>
tensor_entry make_tensor(std::string name, std::vector<std::int64_t> shape, std::span<const T> values) {
  tensor_entry e{std::move(name), dtype_of<T>, std::move(shape), {}};
  const auto n = e.numel();
  if (!n || *n != values.size())
    throw shape_error("tensor '" + e.name + "': shape " + shape_text(e.shape) + " does not hold " +
                      std::to_string(values.size()) + " values");
  e.bytes.resize(values.size_bytes());
  if (!values.empty()) std::memcpy(e.bytes.data(), values.data(), values.size_bytes());
  detail::swap_if_big_endian(e.bytes, sizeof(T));
  return e;
}
template <class T, class A>
tensor_entry make_tensor(std::string name, std::vector<std::int64_t> shape, const std::vector<T, A>& values) {
  return make_tensor(std::move(name), std::move(shape), std::span<const T>(values.data(), values.size()));
}

// An entry's elements as T, which must be exactly its dtype (no silent narrowing of F64 to F32).
template <class T>
std::vector<T> tensor_values(const tensor_entry& e) {
  if (e.type != dtype_of<T>)
    throw value_error("tensor '" + e.name + "' has dtype " + std::string(dtype_name(e.type)) + ", requested as " +
                      std::string(dtype_name(dtype_of<T>)));
  std::vector<T> out(e.bytes.size() / sizeof(T));
  std::vector<std::byte> copy = e.bytes;
  detail::swap_if_big_endian(copy, sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), copy.data(), out.size() * sizeof(T));
  return out;
}

struct safetensors_file {
  std::filesystem::path path;         // where it was read from, named in errors
  std::vector<tensor_entry> tensors;  // in header order
  io::metadata metadata;              // the "__metadata__" object

  const tensor_entry* find(std::string_view name) const noexcept {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }

  const tensor_entry& at(std::string_view name) const {
    if (const auto* t = find(name)) return *t;
    std::string names;
    for (const auto& t : tensors) names += (names.empty() ? "'" : ", '") + t.name + "'";
    throw value_error(path.string() + ": no tensor named '" + std::string(name) + "' (the file holds " +
                      (names.empty() ? "no tensors" : names) + ")");
  }

  // The tensor's values, checked against the dtype of T and the shape the caller expects.
  template <class T>
  std::vector<T> values(std::string_view name, const std::vector<std::int64_t>& expected_shape) const {
    const tensor_entry& t = at(name);
    if (t.type != dtype_of<T>)
      throw value_error(path.string() + ": tensor '" + t.name + "' has dtype " + std::string(dtype_name(t.type)) +
                        ", expected " + std::string(dtype_name(dtype_of<T>)));
    if (t.shape != expected_shape)
      throw shape_error(path.string() + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) + ", expected " +
                        shape_text(expected_shape));
    return tensor_values<T>(t);
  }
};

}  // namespace fnn::io

#include "fnn/io/safetensors_read.hpp"
#include "fnn/io/safetensors_write.hpp"
