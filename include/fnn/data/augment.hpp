#pragma once
// Input noise and image augmentation for training, on rows of row-major images (rows x cols floats):
//   image_augment: a random shift of up to +-max_shift pixels in each direction (zero fill) and, optionally, a
//                  horizontal flip with probability 1/2; shift_image is the deterministic form (test-time
//                  augmentation uses it).
//   gaussian_noise: x += std * N(0, 1). It keeps one std::normal_distribution, whose cached second value makes
//                  the stream depend on the object, so use one object per epoch for reproducible runs.
//
//   fnn::data::image_augment aug{{.rows = 28, .cols = 28, .max_shift = 2, .horizontal_flip = true}};
//   aug(row, rng);
#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"

namespace fnn::data {

// y(r, c) = x(r - dy, c' - dx) with c' = cols-1-c when flipped, 0 outside the image; in place.
inline void shift_image(float* img, int rows, int cols, int dx, int dy, bool flip) {
  std::vector<float> src(img, img + std::size_t(rows) * std::size_t(cols));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const int sr = r - dy;
      int sc = c - dx;
      if (flip) sc = cols - 1 - sc;
      img[r * cols + c] = (sr >= 0 && sr < rows && sc >= 0 && sc < cols) ? src[std::size_t(sr * cols + sc)] : 0.0f;
    }
}

struct image_augment_options {
  int rows = 28, cols = 28;
  int max_shift = 2;
  bool horizontal_flip = true;
};

class image_augment final {
 public:
  image_augment() = default;
  explicit image_augment(image_augment_options o) : o_(o) {
    if (o.rows < 1 || o.cols < 1 || o.max_shift < 0 || o.max_shift >= std::max(o.rows, o.cols))
      throw value_error("image_augment: needs rows, cols >= 1 and 0 <= max_shift < image size, got " +
                        std::to_string(o.rows) + "x" + std::to_string(o.cols) + " shift " + std::to_string(o.max_shift));
  }
  // Draws dx, dy (and the flip) from rng, in that order, then transforms the image.
  template <class Rng>
  void operator()(float* img, Rng& rng) const {
    const auto span = std::uint64_t(2 * o_.max_shift + 1);
    const int dx = int(rng() % span) - o_.max_shift, dy = int(rng() % span) - o_.max_shift;
    const bool flip = o_.horizontal_flip && (rng() & 1) != 0;
    shift_image(img, o_.rows, o_.cols, dx, dy, flip);
  }
  const image_augment_options& options() const noexcept { return o_; }

 private:
  image_augment_options o_;
};

class gaussian_noise final {
 public:
  explicit gaussian_noise(float std) : std_(std) {
    if (!(std >= 0) || !(std < 1e30f)) throw value_error("gaussian_noise: std must be a finite number >= 0");
  }
  template <class Rng>
  void operator()(std::span<float> x, Rng& rng) {
    if (std_ == 0) return;
    for (float& v : x) v += std_ * gauss_(rng);
  }

 private:
  float std_;
  std::normal_distribution<float> gauss_{0.0f, 1.0f};
};

}  // namespace fnn::data
