#pragma once
// MNIST-format data sets (MNIST, Fashion-MNIST, KMNIST, ...): four IDX files in one directory.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
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

// Loads the train (60000 in MNIST) or test (10000, "t10k") split of an MNIST-format directory.
inline mnist_data load_mnist(const std::filesystem::path& dir, split which) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    detail::fail(dir, std::string("MNIST directory does not exist") + detail::fashion_mnist_hint);
  const std::string prefix = which == split::train ? "train" : "t10k";
  const auto image_path = detail::find_idx_file(dir, prefix + "-images-idx3-ubyte");
  const auto label_path = detail::find_idx_file(dir, prefix + "-labels-idx1-ubyte");
  const idx_array images = read_idx(image_path);
  detail::require_idx(images, image_path, 3, "images");
  const idx_array labels = read_idx(label_path);
  detail::require_idx(labels, label_path, 1, "labels");
  if (images.dims[0] != labels.dims[0])
    detail::fail(dir, std::to_string(images.dims[0]) + " images in " + image_path.filename().string() + " but " +
                          std::to_string(labels.dims[0]) + " labels in " + label_path.filename().string());

  mnist_data out;
  out.labels = detail::mnist_labels(labels, label_path, static_cast<int>(out.classes));
  out.rows = static_cast<index_t>(images.dims[1]);
  out.cols = static_cast<index_t>(images.dims[2]);
  out.images.resize(static_cast<index_t>(images.dims[0]), out.rows * out.cols);
  float* dst = out.images.data();
  for (std::size_t i = 0; i < images.data.size(); ++i)
    dst[i] = static_cast<float>(std::to_integer<int>(images.data[i])) / 255.0f;
  return out;
}

}  // namespace fnn::io
