#pragma once
// Group normalization (Wu & He 2018) on [N, C] inputs, as torch.nn.GroupNorm(groups, C) (eps 1e-5): each
// sample's C features are split into `Groups` runs of C / Groups consecutive features; each run is
// normalized by its own mean and biased variance, then a per-feature (per-channel) affine is applied:
//   y[i, j] = gamma[j] * (x[i, j] - mean[i, g(j)]) * rstd[i, g(j)] + beta[j],   g(j) = j / (C / Groups)
// group_norm<1> is layer_norm; group_norm<C> is the instance-norm case (torch.nn.GroupNorm(C, C): each
// feature alone, so y = beta). Same computation in train and eval mode; no running statistics.
//
// Not fused: like layer_norm it is a stage of its own in the fusion plan (network/plan.hpp). Its statistics
// are per sample, not per feature, so the dense epilogue's per-feature statistics do not apply; a fused
// "dense, group_norm, act" stage would need a per-row reduction epilogue (see docs/api/layers.md).
#include <cmath>
#include <cstddef>
#include <string_view>

#include "fnn/core/diagnostics.hpp"
#include "fnn/layers/layer.hpp"

namespace fnn {

template <class T, std::size_t Features, std::size_t Groups>
class group_norm_layer final : public freezable {
  static_assert(Groups > 0 && Features % Groups == 0, "fnn: group_norm_layer needs Features divisible by Groups");

 public:
  static constexpr std::size_t in_features = Features;
  static constexpr std::size_t out_features = Features;
  static constexpr std::size_t groups = Groups;
  static constexpr std::size_t group_size = Features / Groups;
  static constexpr std::string_view name = "group_norm";
  static constexpr double eps = 1e-5;

  group_norm_layer() : gamma_(Features), gamma_grad_(Features), beta_(Features), beta_grad_(Features) {}

  template <class Rng>
  void initialize(Rng&) {
    for (std::size_t j = 0; j < Features; ++j) {
      gamma_[j] = T(1);
      beta_[j] = T(0);
    }
  }

  void forward(const_matrix_view<T> x, matrix_view<T> y, mode, random_engine&) {
    mean_.resize(std::size_t(x.rows()) * Groups);
    rstd_.resize(std::size_t(x.rows()) * Groups);
    for (index_t i = 0; i < x.rows(); ++i) {
      const T* xi = x.row(i);
      T* yi = y.row(i);
      for (std::size_t g = 0; g < Groups; ++g) {
        const std::size_t j0 = g * group_size;
        // Two passes in double: the mean first, then the centred squares (no cancellation).
        double mean = 0, m2 = 0;
        for (std::size_t j = j0; j < j0 + group_size; ++j) mean += double(xi[j]);
        mean /= double(group_size);
        for (std::size_t j = j0; j < j0 + group_size; ++j) m2 += (double(xi[j]) - mean) * (double(xi[j]) - mean);
        const std::size_t k = std::size_t(i) * Groups + g;
        mean_[k] = T(mean);
        rstd_[k] = T(1.0 / std::sqrt(m2 / double(group_size) + eps));
        for (std::size_t j = j0; j < j0 + group_size; ++j) yi[j] = gamma_[j] * (xi[j] - mean_[k]) * rstd_[k] + beta_[j];
      }
    }
  }

  // Per group, the layer-norm gradient over its group_size features:
  //   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma.
  void backward(const_matrix_view<T> x, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    const double n = double(group_size);
    for (index_t i = 0; i < x.rows(); ++i) {
      for (std::size_t grp = 0; grp < Groups; ++grp) {
        const std::size_t k = std::size_t(i) * Groups + grp, j0 = grp * group_size;
        const double mean = double(mean_[k]), rstd = double(rstd_[k]);
        double sum_g = 0, sum_g_xhat = 0;
        for (std::size_t j = j0; j < j0 + group_size; ++j) {
          const auto c = index_t(j);
          const double xhat = (double(x(i, c)) - mean) * rstd;
          const double g = double(dy(i, c)) * double(gamma_[j]);
          sum_g += g;
          sum_g_xhat += g * xhat;
          if (!frozen_.parameter(0)) gamma_grad_[j] += T(double(dy(i, c)) * xhat);
          if (!frozen_.parameter(1)) beta_grad_[j] += dy(i, c);
        }
        if (dx.rows() == 0) continue;
        for (std::size_t j = j0; j < j0 + group_size; ++j) {
          const auto c = index_t(j);
          const double xhat = (double(x(i, c)) - mean) * rstd;
          const double g = double(dy(i, c)) * double(gamma_[j]);
          dx(i, c) = T(rstd * (g - sum_g / n - xhat * sum_g_xhat / n));
        }
      }
    }
  }

  template <class F>
  void for_each_parameter(index_t module, F&& f) {
    visit_norm_affine<T>(module, gamma_, gamma_grad_, beta_, beta_grad_, frozen_, f);
  }
  template <class F>
  void for_each_buffer(index_t, F&&) {}

  std::span<const T> gamma() const noexcept { return gamma_; }
  std::span<const T> beta() const noexcept { return beta_; }

 private:
  buffer<T> gamma_, gamma_grad_, beta_, beta_grad_;
  buffer<T> mean_, rstd_;  // [sample, group], of the last forward
};

// fnn::group_norm<Groups>: what users write (torch.nn.GroupNorm(Groups, in_features)).
template <std::size_t Groups>
struct group_norm final {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::normalization;
  template <class T, std::size_t Index, std::size_t In, class>
  struct binder {
    using check =
        typename diagnostics::at_layer<Index>::template group_norm_groups<Groups>::template must_divide_in_features<In>;
    static_assert(diagnostics::holds<check>);
    // A valid stand-in after the diagnostic, so that only it is reported.
    using type = group_norm_layer<T, In, (Groups > 0 && In % Groups == 0 ? Groups : 1)>;
  };
  template <class T, std::size_t Index, std::size_t In, class Hint>
  using bind = typename binder<T, Index, In, Hint>::type;
};

}  // namespace fnn
