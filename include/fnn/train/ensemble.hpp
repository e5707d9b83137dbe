#pragma once
// Ensembles and test-time augmentation, both as averages of predicted probabilities (softmax of the logits):
// the mean of the members' probabilities, not of their logits, as is usual for classification ensembles.
//
//   auto p = fnn::train::softmax(net.infer(x));                    // probabilities, rows sum to 1
//   fnn::train::mean_probabilities acc;
//   for (auto& m : members) acc.add(m.infer(x));                   // logits of each member
//   fnn::matrix<float> ensemble = acc.mean();
//   auto tta = fnn::train::tta_probabilities(x, 28, 28, fnn::train::default_tta(),
//                                            [&](fnn::const_matrix_view<float> v) { return net.infer(v); });
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/data/augment.hpp"

namespace fnn::train {

// Row-wise softmax, computed in double with the row maximum subtracted (no overflow for large logits).
inline matrix<float> softmax(const_matrix_view<float> logits) {
  matrix<float> p(logits.rows(), logits.cols());
  for (index_t i = 0; i < logits.rows(); ++i) {
    const float* z = logits.row(i);
    const double mx = *std::max_element(z, z + logits.cols());
    double sum = 0;
    for (index_t j = 0; j < logits.cols(); ++j) sum += std::exp(double(z[j]) - mx);
    for (index_t j = 0; j < logits.cols(); ++j) p(i, j) = float(std::exp(double(z[j]) - mx) / sum);
  }
  return p;
}

// Accumulates the softmax of several sets of logits of the same samples; mean() is their average.
class mean_probabilities final {
 public:
  void add(const_matrix_view<float> logits) {
    if (count_ == 0) sum_.assign(std::size_t(logits.size()), 0.0), rows_ = logits.rows(), cols_ = logits.cols();
    else if (logits.rows() != rows_ || logits.cols() != cols_)
      throw shape_error("mean_probabilities: members give " + std::to_string(rows_) + "x" + std::to_string(cols_) +
                        " and " + std::to_string(logits.rows()) + "x" + std::to_string(logits.cols()) + " outputs");
    const auto p = softmax(logits);
    for (std::size_t i = 0; i < sum_.size(); ++i) sum_[i] += double(p.data()[i]);
    ++count_;
  }
  matrix<float> mean() const {
    if (count_ == 0) throw value_error("mean_probabilities: nothing was added");
    matrix<float> m(rows_, cols_);
    for (std::size_t i = 0; i < sum_.size(); ++i) m.data()[i] = float(sum_[i] / double(count_));
    return m;
  }
  int count() const noexcept { return count_; }

 private:
  std::vector<double> sum_;
  index_t rows_ = 0, cols_ = 0;
  int count_ = 0;
};

struct image_transform {
  int dx = 0, dy = 0;
  bool flip = false;
};

// The identity, the horizontal flip, and one-pixel shifts in the four directions.
inline std::vector<image_transform> default_tta(bool flip = true) {
  std::vector<image_transform> t{{0, 0, false}, {1, 0, false}, {-1, 0, false}, {0, 1, false}, {0, -1, false}};
  if (flip) t.push_back({0, 0, true});
  return t;
}

// Mean probabilities of logits_of(x') over the transformed copies x' of the images x (rows x cols each).
template <class LogitsOf>
matrix<float> tta_probabilities(const_matrix_view<float> x, int rows, int cols,
                                const std::vector<image_transform>& transforms, LogitsOf&& logits_of) {
  if (x.cols() != index_t(rows) * cols)
    throw shape_error("tta_probabilities: images of " + std::to_string(rows) + "x" + std::to_string(cols) +
                      ", rows of " + std::to_string(x.cols()) + " values");
  mean_probabilities acc;
  matrix<float> t(x.rows(), x.cols());
  for (const auto& tr : transforms) {
    for (index_t i = 0; i < x.rows(); ++i) {
      std::copy(x.row(i), x.row(i) + x.cols(), t.row(i));
      if (tr.dx != 0 || tr.dy != 0 || tr.flip) data::shift_image(t.row(i), rows, cols, tr.dx, tr.dy, tr.flip);
    }
    acc.add(logits_of(const_matrix_view<float>(t.view())));
  }
  return acc.mean();
}

}  // namespace fnn::train
