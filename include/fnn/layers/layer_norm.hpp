#pragma once
// Layer normalization (Ba et al. 2016) over the features of each sample, with a per-feature affine
// (torch.nn.LayerNorm(features), eps 1e-5). Same computation in train and eval mode.
#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>

#include "fnn/layers/layer.hpp"

namespace fnn {

template <class T, std::size_t Features>
class layer_norm_layer final : public freezable {
 public:
  static constexpr std::size_t in_features = Features;
  static constexpr std::size_t out_features = Features;
  static constexpr std::string_view name = "layer_norm";
  static constexpr double eps = 1e-5;

  layer_norm_layer() : gamma_(Features), gamma_grad_(Features), beta_(Features), beta_grad_(Features) {}

  template <class Rng>
  void initialize(Rng&) {
    for (std::size_t j = 0; j < Features; ++j) {
      gamma_[j] = T(1);
      beta_[j] = T(0);
    }
  }

  void forward(const_matrix_view<T> x, matrix_view<T> y, mode, random_engine&) {
    mean_.resize(std::size_t(x.rows()));
    rstd_.resize(std::size_t(x.rows()));
    for (index_t i = 0; i < x.rows(); ++i) {
      const T* xi = x.row(i);
      double mean = 0, m2 = 0;
      for (std::size_t j = 0; j < Features; ++j) mean += double(xi[j]);
      mean /= double(Features);
      for (std::size_t j = 0; j < Features; ++j) m2 += (double(xi[j]) - mean) * (double(xi[j]) - mean);
      mean_[std::size_t(i)] = T(mean);
      rstd_[std::size_t(i)] = T(1.0 / std::sqrt(m2 / double(Features) + eps));
      T* yi = y.row(i);
      for (std::size_t j = 0; j < Features; ++j)
        yi[j] = gamma_[j] * (xi[j] - mean_[std::size_t(i)]) * rstd_[std::size_t(i)] + beta_[j];
    }
  }

  void backward(const_matrix_view<T> x, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    for (index_t i = 0; i < x.rows(); ++i) {
      const double mean = double(mean_[std::size_t(i)]), rstd = double(rstd_[std::size_t(i)]);
      double sum_g = 0, sum_g_xhat = 0;  // g = dy * gamma = dL/dxhat
      for (std::size_t j = 0; j < Features; ++j) {
        const auto c = index_t(j);
        const double xhat = (double(x(i, c)) - mean) * rstd;
        const double g = double(dy(i, c)) * double(gamma_[j]);
        sum_g += g;
        sum_g_xhat += g * xhat;
        if (!frozen_.parameter(0)) gamma_grad_[j] += T(double(dy(i, c)) * xhat);
        if (!frozen_.parameter(1)) beta_grad_[j] += dy(i, c);
      }
      if (dx.rows() == 0) continue;
      const double nf = double(Features);
      for (std::size_t j = 0; j < Features; ++j) {
        const auto c = index_t(j);
        const double xhat = (double(x(i, c)) - mean) * rstd;
        const double g = double(dy(i, c)) * double(gamma_[j]);
        dx(i, c) = T(rstd * (g - sum_g / nf - xhat * sum_g_xhat / nf));
      }
    }
  }

  // The affine, for the fused dense + layer_norm + activation stage (network/stages.hpp).
  std::span<T> gamma() noexcept { return gamma_; }
  std::span<T> beta() noexcept { return beta_; }
  std::span<T> gamma_grad() noexcept { return gamma_grad_; }
  std::span<T> beta_grad() noexcept { return beta_grad_; }

  template <class F>
  void for_each_parameter(index_t module, F&& f) {
    visit_norm_affine<T>(module, gamma_, gamma_grad_, beta_, beta_grad_, frozen_, f);
  }
  template <class F>
  void for_each_buffer(index_t, F&&) {}

 private:
  buffer<T> gamma_, gamma_grad_, beta_, beta_grad_;
  buffer<T> mean_, rstd_;  // per sample, of the last forward
};

struct layer_norm final {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::normalization;
  template <class T, std::size_t, std::size_t In, class>
  using bind = layer_norm_layer<T, In>;
};

}  // namespace fnn
