#pragma once
// Batch normalization over the batch dimension (torch.nn.BatchNorm1d on [batch, features]):
// train mode normalizes with the batch mean and biased variance and updates running statistics
// (momentum 0.1, running variance unbiased); eval mode uses the running statistics. eps = 1e-5.
// Statistics are computed in two passes (mean, then centred squares) in the accumulation type
// `double`, so large offsets do not cancel catastrophically.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/layers/layer.hpp"

namespace fnn {

// Batch statistics shared by several processes (SyncBatchNorm): when a batch_norm layer has one, train mode
// normalizes with the mean and variance of every process's rows, and backward uses the sums over all of them.
// fnn/distributed implements it over MPI; nothing else in the library depends on how.
class batch_statistics_sync {
 public:
  // In place: the per-feature mean and biased variance of this process's n rows become those of all
  // processes' rows. Returns the total row count. Every process gets the same numbers.
  virtual index_t merge_moments(index_t n, std::span<double> mean, std::span<double> var) = 0;
  // In place: element-wise sums over all processes.
  virtual void sum(std::span<double> values) = 0;

 protected:
  ~batch_statistics_sync() = default;
};

template <class T, std::size_t Features>
class batch_norm_layer final : public freezable {
 public:
  static constexpr std::size_t in_features = Features;
  static constexpr std::size_t out_features = Features;
  static constexpr std::string_view name = "batch_norm";
  static constexpr index_t min_train_batch = 2;  // one sample has no variance (torch raises too)
  static constexpr double eps = 1e-5;
  static constexpr double momentum = 0.1;

  batch_norm_layer()
      : gamma_(Features), gamma_grad_(Features), beta_(Features), beta_grad_(Features),
        running_mean_(Features), running_var_(Features), mean_(Features), rstd_(Features) {}

  template <class Rng>
  void initialize(Rng&) {
    for (std::size_t j = 0; j < Features; ++j) {
      gamma_[j] = T(1);
      beta_[j] = T(0);
      running_mean_[j] = T(0);
      running_var_[j] = T(1);
    }
    batches_tracked_ = 0;
  }

  // A frozen layer (freezing().statistics()) runs as in eval mode whatever m says.
  void forward(const_matrix_view<T> x, matrix_view<T> y, mode m, random_engine&) {
    const index_t n = x.rows();
    if (m == mode::train && !frozen_.statistics()) {
      if (n < min_train_batch)
        throw value_error("batch_norm needs at least 2 samples per batch in train mode, got " + std::to_string(n));
      batch_statistics(x);
      rows_total_ = n;
      if (sync_) {
        rows_total_ = sync_->merge_moments(n, batch_mean_, batch_var_);
        for (std::size_t j = 0; j < Features; ++j) {
          mean_[j] = T(batch_mean_[j]);
          rstd_[j] = T(1.0 / std::sqrt(batch_var_[j] + eps));
        }
      }
      update_running_statistics(rows_total_, batch_mean_.data(), batch_var_.data());
    } else {
      for (std::size_t j = 0; j < Features; ++j) {
        mean_[j] = running_mean_[j];
        rstd_[j] = T(1.0 / std::sqrt(double(running_var_[j]) + eps));
      }
    }
    for (index_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < Features; ++j) {
        const auto c = index_t(j);
        y(i, c) = gamma_[j] * (x(i, c) - mean_[j]) * rstd_[j] + beta_[j];
      }
  }

  // Uses mean_/rstd_ of the last forward (batch statistics in train mode, running ones in eval mode). With a
  // statistics sync, the two sums are taken over every process's rows (the parameter gradients keep this
  // process's share: the gradient all-reduce adds the rest).
  void backward(const_matrix_view<T> x, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode m) {
    if (frozen_.statistics()) m = mode::eval;
    const index_t n = x.rows();
    std::vector<double> sums(2 * Features, 0.0);  // [sum dy | sum dy * xhat] per feature
    for (std::size_t j = 0; j < Features; ++j) {
      const auto c = index_t(j);
      for (index_t i = 0; i < n; ++i) {
        const double xhat = (double(x(i, c)) - double(mean_[j])) * double(rstd_[j]);
        sums[j] += double(dy(i, c));
        sums[Features + j] += double(dy(i, c)) * xhat;
      }
      if (!frozen_.parameter(1)) beta_grad_[j] += T(sums[j]);
      if (!frozen_.parameter(0)) gamma_grad_[j] += T(sums[Features + j]);
    }
    if (dx.rows() == 0) return;
    const bool synced = m == mode::train && sync_;
    if (synced) sync_->sum(sums);
    const double rows = synced ? double(rows_total_) : double(n);
    for (std::size_t j = 0; j < Features; ++j) {
      const auto c = index_t(j);
      const double g = double(gamma_[j]) * double(rstd_[j]), sum_dy = sums[j], sum_dy_xhat = sums[Features + j];
      for (index_t i = 0; i < n; ++i) {
        if (m == mode::eval) {
          dx(i, c) = T(g * double(dy(i, c)));
        } else {
          const double xhat = (double(x(i, c)) - double(mean_[j])) * double(rstd_[j]);
          dx(i, c) = T(g * (double(dy(i, c)) - sum_dy / rows - xhat * sum_dy_xhat / rows));
        }
      }
    }
  }

  // SyncBatchNorm: null (the default) for this process's statistics only.
  void set_statistics_sync(batch_statistics_sync* s) noexcept { sync_ = s; }
  batch_statistics_sync* statistics_sync() const noexcept { return sync_; }

  template <class F>
  void for_each_parameter(index_t module, F&& f) {
    visit_norm_affine<T>(module, gamma_, gamma_grad_, beta_, beta_grad_, frozen_, f);
  }
  template <class F>
  void for_each_buffer(index_t module, F&& f) {
    buffer_ref<T> rm{module, "running_mean", running_mean_, nullptr, index_t(Features)};
    f(rm);
    buffer_ref<T> rv{module, "running_var", running_var_, nullptr, index_t(Features)};
    f(rv);
    buffer_ref<T> nb{module, "num_batches_tracked", {}, &batches_tracked_, 1};
    f(nb);
  }

  // running = (1 - momentum) * running + momentum * batch, with the unbiased batch variance (as torch).
  // mean/var: the batch mean and biased variance of n samples. Fused stages call this too.
  void update_running_statistics(index_t n, const double* mean, const double* var) {
    const double unbias = double(n) / double(n - 1);
    for (std::size_t j = 0; j < Features; ++j) {
      running_mean_[j] = T((1 - momentum) * double(running_mean_[j]) + momentum * mean[j]);
      running_var_[j] = T((1 - momentum) * double(running_var_[j]) + momentum * var[j] * unbias);
    }
    ++batches_tracked_;
  }

  std::span<T> gamma() noexcept { return gamma_; }
  std::span<T> beta() noexcept { return beta_; }
  std::span<T> gamma_grad() noexcept { return gamma_grad_; }
  std::span<T> beta_grad() noexcept { return beta_grad_; }
  std::span<const T> running_mean() const noexcept { return running_mean_; }
  std::span<const T> running_var() const noexcept { return running_var_; }
  std::int64_t batches_tracked() const noexcept { return batches_tracked_; }

 private:
  void batch_statistics(const_matrix_view<T> x) {
    const index_t n = x.rows();
    std::vector<double>& mean = batch_mean_;
    mean.assign(Features, 0.0);
    std::vector<double> m2(Features, 0.0);
    batch_var_.resize(Features);
    for (index_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < Features; ++j) mean[j] += double(x(i, index_t(j)));
    for (std::size_t j = 0; j < Features; ++j) mean[j] /= double(n);
    for (index_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < Features; ++j) {
        const double d = double(x(i, index_t(j))) - mean[j];
        m2[j] += d * d;
      }
    for (std::size_t j = 0; j < Features; ++j) {
      mean_[j] = T(mean[j]);
      batch_var_[j] = m2[j] / double(n);
      rstd_[j] = T(1.0 / std::sqrt(batch_var_[j] + eps));
    }
  }

  buffer<T> gamma_, gamma_grad_, beta_, beta_grad_, running_mean_, running_var_;
  buffer<T> mean_, rstd_;  // of the last forward, for backward
  std::vector<double> batch_mean_, batch_var_;
  std::int64_t batches_tracked_ = 0;
  batch_statistics_sync* sync_ = nullptr;
  index_t rows_total_ = 0;  // rows behind the last train-mode statistics (all processes' with a sync)
};

struct batch_norm final {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::normalization;
  template <class T, std::size_t, std::size_t In, class>
  using bind = batch_norm_layer<T, In>;
};

}  // namespace fnn
