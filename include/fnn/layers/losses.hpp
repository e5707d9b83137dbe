#pragma once
// Losses, each the mean over the batch as in PyTorch's default reduction. A loss validates its
// target before the network runs (so bad input changes nothing), returns the loss value and writes
// the gradient with respect to the network's output. The scalar type is deduced from the gradient
// view (pass an empty matrix_view<T>{} to skip the gradient).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn::loss {

// Softmax + cross-entropy on logits, through log-sum-exp: loss_i = log(sum_j exp(z_ij)) - z_i,label
// with the maximum subtracted first, so logits of +-1e4 stay finite. Targets are class indices.
struct softmax_cross_entropy final {
  using target_type = std::span<const std::int32_t>;
  static constexpr std::size_t min_outputs = 2;

  static void validate(index_t batch, index_t classes, target_type labels) {
    if (static_cast<index_t>(labels.size()) != batch)
      throw shape_error("softmax_cross_entropy got " + std::to_string(labels.size()) + " labels for a batch of " +
                        std::to_string(batch));
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] < 0 || labels[i] >= classes)
        throw value_error("label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                          " is out of range [0, " + std::to_string(classes) + ")");
  }

  template <class T>
  T operator()(std::type_identity_t<const_matrix_view<T>> logits, target_type labels, matrix_view<T> grad) const {
    validate(logits.rows(), logits.cols(), labels);
    const index_t n = logits.rows(), k = logits.cols();
    double total = 0;
    for (index_t i = 0; i < n; ++i) {
      const T* z = logits.row(i);
      const T m = *std::max_element(z, z + k);
      double s = 0;
      for (index_t j = 0; j < k; ++j) s += std::exp(double(z[j] - m));
      const double lse = double(m) + std::log(s);
      total += lse - double(z[labels[std::size_t(i)]]);
      if (grad.rows() == 0) continue;
      for (index_t j = 0; j < k; ++j) {
        const double p = std::exp(double(z[j]) - lse);
        grad(i, j) = T((p - (j == labels[std::size_t(i)] ? 1.0 : 0.0)) / double(n));
      }
    }
    return T(total / double(n));
  }
};

namespace detail {
template <class T>
void validate_dense_target(const char* loss, index_t batch, index_t features, const_matrix_view<T> target) {
  if (target.rows() != batch || target.cols() != features)
    throw shape_error(std::string(loss) + " target is " + std::to_string(target.rows()) + "x" +
                      std::to_string(target.cols()) + ", the network output is " + std::to_string(batch) + "x" +
                      std::to_string(features));
}
}  // namespace detail

// Mean squared error over all elements: mean((y - t)^2).
struct mean_squared_error final {
  static constexpr std::size_t min_outputs = 1;
  // U is T or const T: a target may be given as a mutable view too.
  template <class U>
  static void validate(index_t batch, index_t features, matrix_view<U> t) {
    detail::validate_dense_target("mean_squared_error", batch, features, const_matrix_view<std::remove_const_t<U>>(t));
  }
  template <class T>
  T operator()(std::type_identity_t<const_matrix_view<T>> y, std::type_identity_t<const_matrix_view<T>> t,
               matrix_view<T> grad) const {
    validate(y.rows(), y.cols(), t);
    const double count = double(y.rows()) * double(y.cols());
    double total = 0;
    for (index_t i = 0; i < y.rows(); ++i)
      for (index_t j = 0; j < y.cols(); ++j) {
        const double d = double(y(i, j)) - double(t(i, j));
        total += d * d;
        if (grad.rows() > 0) grad(i, j) = T(2 * d / count);
      }
    return T(total / count);
  }
};

// Binary cross-entropy on logits in the stable form max(z,0) - z*t + log(1 + exp(-|z|)), mean over
// all elements (torch.nn.BCEWithLogitsLoss). Targets are probabilities in [0, 1].
struct binary_cross_entropy_with_logits final {
  static constexpr std::size_t min_outputs = 1;
  // U is T or const T: a target may be given as a mutable view too.
  template <class U>
  static void validate(index_t batch, index_t features, matrix_view<U> t) {
    using T = std::remove_const_t<U>;
    detail::validate_dense_target("binary_cross_entropy_with_logits", batch, features, const_matrix_view<T>(t));
    for (index_t i = 0; i < t.rows(); ++i)
      for (index_t j = 0; j < t.cols(); ++j)
        if (!(t(i, j) >= T(0) && t(i, j) <= T(1)))
          throw value_error("binary_cross_entropy_with_logits target at (" + std::to_string(i) + ", " +
                            std::to_string(j) + ") is " + std::to_string(double(t(i, j))) + ", outside [0, 1]");
  }
  template <class T>
  T operator()(std::type_identity_t<const_matrix_view<T>> z, std::type_identity_t<const_matrix_view<T>> t,
               matrix_view<T> grad) const {
    validate(z.rows(), z.cols(), t);
    const double count = double(z.rows()) * double(z.cols());
    double total = 0;
    for (index_t i = 0; i < z.rows(); ++i)
      for (index_t j = 0; j < z.cols(); ++j) {
        const double x = double(z(i, j)), y = double(t(i, j));
        total += std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
        if (grad.rows() > 0) {
          const double s = x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
          grad(i, j) = T((s - y) / count);
        }
      }
    return T(total / count);
  }
};

}  // namespace fnn::loss
