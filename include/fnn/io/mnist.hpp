#pragma once
// MNIST-format data sets (MNIST, Fashion-MNIST, KMNIST, ...): four IDX files in one directory.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "fnn/core/config.hpp"
#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/io/idx.hpp"

namespace fnn::io {

enum class split { train, test };

struct mnist_data {
  matrix<float> images;              // [n, rows * cols], pixel / 255 in [0, 1]
  std::vector<std::int32_t> labels;  // n class indices in [0, classes)
  index_t rows = 0;
  index_t cols = 0;
  index_t classes = 10;

  index_t size() const noexcept { return images.rows(); }
};

// The same data with the pixels left as bytes: 47 MB for Fashion-MNIST's training split instead of 188 MB
// of floats, and no pass over it at load time. Convert where a batch is formed (pixels_to_float).
struct mnist_bytes {
  buffer<std::byte> data;            // n * rows * cols pixels in 0..255, row-major: the IDX payload itself
  std::vector<std::int32_t> labels;  // n class indices in [0, classes)
  index_t rows = 0;
  index_t cols = 0;
  index_t classes = 10;

  index_t size() const noexcept { return static_cast<index_t>(labels.size()); }
  // [n, rows * cols]; unsigned char may alias the std::byte payload.
  const_matrix_view<std::uint8_t> pixels() const noexcept {
    return {reinterpret_cast<const std::uint8_t*>(data.data()), size(), rows * cols};
  }
};

// dst[i] = src[i] / 255 in [0, 1], exactly as load_mnist computes it (a division, not a multiplication by
// 1/255, which rounds differently for some bytes). A plain loop: the compiler vectorizes it.
inline void pixels_to_float(const std::uint8_t* src, std::size_t n, float* dst) noexcept {
  for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
}

namespace detail {

inline constexpr const char* fashion_mnist_hint =
    " (on Debian, `apt install dataset-fashion-mnist` provides Fashion-MNIST in /usr/share/datasets/fashion-mnist)";

// Prefers the .gz file when both exist: it is what the distributions ship and what checksums refer to.
inline std::filesystem::path find_idx_file(const std::filesystem::path& dir, const std::string& stem) {
  std::error_code ec;
  for (const std::string& name : {stem + ".gz", stem})
    if (std::filesystem::is_regular_file(dir / name, ec)) return dir / name;
  fail(dir, "neither " + stem + ".gz nor " + stem + " found in this directory" + fashion_mnist_hint);
}

inline void require_idx(const idx_array& a, const std::filesystem::path& path, std::size_t rank, const char* role) {
  if (a.type != idx_type::u8)
    fail(path,
         std::string(role) + " must be unsigned bytes (IDX type 0x08), got " + std::string(idx_type_name(a.type)));
  if (a.dims.size() != rank)
    fail(path, std::string(role) + " must be " + std::to_string(rank) + "-D, got " + std::to_string(a.dims.size()) +
                   "-D " + dims_text(a.dims));
}

inline std::vector<std::int32_t> mnist_labels(const idx_array& a, const std::filesystem::path& path, int classes) {
  std::vector<std::int32_t> labels(a.data.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    labels[i] = std::to_integer<std::int32_t>(a.data[i]);
    if (labels[i] >= classes)
      throw value_error(path.string() + ": label at index " + std::to_string(i) + " is " + std::to_string(labels[i]) +
                        ", outside [0, " + std::to_string(classes) + ")");
  }
  return labels;
}

}  // namespace detail

// Loads the train (60000 in MNIST) or test (10000, "t10k") split of an MNIST-format directory, pixels as bytes.
inline mnist_bytes load_mnist_bytes(const std::filesystem::path& dir, split which) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    detail::fail(dir, std::string("MNIST directory does not exist") + detail::fashion_mnist_hint);
  const std::string prefix = which == split::train ? "train" : "t10k";
  const auto image_path = detail::find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const auto label_path = detail::find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  idx_array images = read_idx(image_path);
  detail::require_idx(images, image_path, 3, "images");
  const idx_array labels = read_idx(label_path);
  detail::require_idx(labels, label_path, 1, "labels");
  if (images.dims[0] != labels.dims[0])
    detail::fail(dir, std::to_string(images.dims[0]) + " images in " + image_path.filename().string() + " but " +
                          std::to_string(labels.dims[0]) + " labels in " + label_path.filename().string());

  mnist_bytes out;
  out.labels = detail::mnist_labels(labels, label_path, static_cast<int>(out.classes));
  out.rows = static_cast<index_t>(images.dims[1]);
  out.cols = static_cast<index_t>(images.dims[2]);
  out.data = std::move(images.data);
  return out;
}

// The same split as floats, pixel / 255 in [0, 1].
inline mnist_data load_mnist(const std::filesystem::path& dir, split which) {
  mnist_bytes b = load_mnist_bytes(dir, which);
  mnist_data out;
  out.labels = std::move(b.labels);
  out.rows = b.rows;
  out.cols = b.cols;
  out.classes = b.classes;
  out.images.resize(static_cast<index_t>(out.labels.size()), b.rows * b.cols);
  pixels_to_float(reinterpret_cast<const std::uint8_t*>(b.data.data()), b.data.size(), out.images.data());
  return out;
}

}  // namespace fnn::io
