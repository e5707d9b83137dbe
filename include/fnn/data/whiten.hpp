#pragma once
// PCA and ZCA whitening fitted on training data. With the training mean m and covariance C = U diag(l) U^T
// (eigenvalues l descending, computed in double):
//   PCA:  y = diag(1 / sqrt(l_k + eps)) U_k^T (x - m)      k components, ordered by variance (k <= features)
//   ZCA:  y = U diag(1 / sqrt(l + eps)) U^T (x - m)        all components, rotated back to the input space
// so that the whitened training set has (up to eps) identity covariance. The covariance is the biased one
// (divided by n), as numpy.cov(x, rowvar=False, bias=True). eps keeps near-zero directions from exploding.
//
//   auto w = fnn::data::whitening::fit(train.view(), {.kind = fnn::data::whitening_kind::pca, .components = 50});
//   fnn::matrix<float> y(batch.rows(), w.out_features());
//   w.apply(batch.view(), y.view());
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn::data {

// Eigendecomposition of a symmetric n x n matrix (row-major, overwritten) by the cyclic Jacobi method:
// rotations zero the off-diagonal elements one pair at a time until their sum of squares is negligible against
// the diagonal's. Returns eigenvalues descending; `vectors` receives the eigenvectors as COLUMNS (row-major
// n x n). Jacobi is slower than tridiagonal QR for large n, but simple, unconditionally stable and accurate
// for the small eigenvalues whitening divides by.
inline std::vector<double> symmetric_eigen(std::vector<double>& a, std::size_t n, std::vector<double>& vectors,
                                           int max_sweeps = 100) {
  if (a.size() != n * n) throw shape_error("symmetric_eigen: expected " + std::to_string(n * n) + " values");
  vectors.assign(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i) vectors[i * n + i] = 1.0;
  const auto at = [&](std::size_t r, std::size_t c) -> double& { return a[r * n + c]; };
  double diag = 0;
  for (std::size_t i = 0; i < n; ++i) diag += at(i, i) * at(i, i);
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    double off = 0;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) off += at(p, q) * at(p, q);
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (std::size_t p = 0; p + 1 < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        const double apq = at(p, q);
        if (std::abs(apq) < 1e-300) continue;
        // The rotation angle that zeroes a(p, q): t = tan(theta), the smaller root of t^2 + 2 tau t - 1 = 0.
        const double tau = (at(q, q) - at(p, p)) / (2 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1 + tau * tau));
        const double c = 1 / std::sqrt(1 + t * t), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // columns p and q: A <- A J
          const double akp = at(k, p), akq = at(k, q);
          at(k, p) = c * akp - s * akq;
          at(k, q) = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // rows p and q: A <- J^T A
          const double apk = at(p, k), aqk = at(q, k);
          at(p, k) = c * apk - s * aqk;
          at(q, k) = s * apk + c * aqk;
        }
        at(p, q) = at(q, p) = 0.0;
        for (std::size_t k = 0; k < n; ++k) {  // V <- V J
          const double vkp = vectors[k * n + p], vkq = vectors[k * n + q];
          vectors[k * n + p] = c * vkp - s * vkq;
          vectors[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return at(i, i) > at(j, j); });
  std::vector<double> values(n), sorted(n * n);
  for (std::size_t k = 0; k < n; ++k) {
    values[k] = at(order[k], order[k]);
    for (std::size_t r = 0; r < n; ++r) sorted[r * n + k] = vectors[r * n + order[k]];
  }
  // A sign convention (largest component of each vector positive) makes the result reproducible across
  // platforms and comparable with other libraries.
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t big = 0;
    for (std::size_t r = 1; r < n; ++r)
      if (std::abs(sorted[r * n + k]) > std::abs(sorted[big * n + k])) big = r;
    if (sorted[big * n + k] < 0)
      for (std::size_t r = 0; r < n; ++r) sorted[r * n + k] = -sorted[r * n + k];
  }
  vectors = std::move(sorted);
  return values;
}

enum class whitening_kind { pca, zca };

struct whitening_options {
  whitening_kind kind = whitening_kind::zca;
  index_t components = 0;  // PCA only: 0 keeps all
  double eps = 1e-5;
};

class whitening final {
 public:
  static whitening fit(const_matrix_view<float> x, whitening_options o = {}) {
    const index_t n = x.rows(), f = x.cols();
    if (n < 2 || f < 1)
      throw value_error("whitening::fit: needs at least 2 rows and 1 feature, got " + std::to_string(n) + " x " +
                        std::to_string(f));
    if (o.components < 0 || o.components > f)
      throw value_error("whitening::fit: components must be in [0, " + std::to_string(f) + "], got " +
                        std::to_string(o.components));
    if (o.kind == whitening_kind::zca && o.components != 0 && o.components != f)
      throw value_error("whitening::fit: ZCA keeps all components (components 0), got " +
                        std::to_string(o.components));
    if (!(o.eps >= 0)) throw value_error("whitening::fit: eps must be >= 0");
    const auto fs = std::size_t(f);
    whitening w;
    w.kind_ = o.kind;
    w.mean_.assign(fs, 0.0);
    for (index_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < fs; ++j) w.mean_[j] += x(i, index_t(j));
    for (auto& m : w.mean_) m /= double(n);
    std::vector<double> cov(fs * fs, 0.0), d(fs);
    for (index_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < fs; ++j) d[j] = double(x(i, index_t(j))) - w.mean_[j];
      for (std::size_t r = 0; r < fs; ++r)
        for (std::size_t c = r; c < fs; ++c) cov[r * fs + c] += d[r] * d[c];
    }
    for (std::size_t r = 0; r < fs; ++r)
      for (std::size_t c = r; c < fs; ++c) cov[c * fs + r] = cov[r * fs + c] /= double(n);
    std::vector<double> u;
    w.eigenvalues_ = symmetric_eigen(cov, fs, u);
    const std::size_t k = o.kind == whitening_kind::pca && o.components > 0 ? std::size_t(o.components) : fs;
    // The transform as a k x f matrix W (y = W (x - m)).
    w.out_ = index_t(k);
    w.w_.assign(k * fs, 0.0);
    for (std::size_t c = 0; c < k; ++c) {
      const double scale = 1 / std::sqrt(std::max(w.eigenvalues_[c], 0.0) + o.eps);
      for (std::size_t j = 0; j < fs; ++j) w.w_[c * fs + j] = scale * u[j * fs + c];
    }
    if (o.kind == whitening_kind::zca) {  // U diag(s) U^T
      std::vector<double> z(fs * fs, 0.0);
      for (std::size_t r = 0; r < fs; ++r)
        for (std::size_t c = 0; c < fs; ++c) {
          const double urc = u[r * fs + c];
          for (std::size_t j = 0; j < fs; ++j) z[r * fs + j] += urc * w.w_[c * fs + j];
        }
      w.w_ = std::move(z);
    }
    return w;
  }

  whitening_kind kind() const noexcept { return kind_; }
  index_t in_features() const noexcept { return index_t(mean_.size()); }
  index_t out_features() const noexcept { return out_; }
  // Eigenvalues of the training covariance, descending (all of them, also for PCA).
  const std::vector<double>& eigenvalues() const noexcept { return eigenvalues_; }
  // Fraction of the training variance the kept components explain.
  double explained_variance() const {
    const double total = std::accumulate(eigenvalues_.begin(), eigenvalues_.end(), 0.0);
    const double kept = std::accumulate(eigenvalues_.begin(), eigenvalues_.begin() + out_, 0.0);
    return total > 0 ? kept / total : 1.0;
  }

  void apply(const_matrix_view<float> x, matrix_view<float> y) const {
    if (x.cols() != in_features() || y.cols() != out_ || y.rows() != x.rows())
      throw shape_error("whitening: maps " + std::to_string(in_features()) + " -> " + std::to_string(out_) +
                        " features, got " + std::to_string(x.rows()) + "x" + std::to_string(x.cols()) + " -> " +
                        std::to_string(y.rows()) + "x" + std::to_string(y.cols()));
    const auto fs = mean_.size();
    std::vector<double> d(fs);
    for (index_t i = 0; i < x.rows(); ++i) {
      for (std::size_t j = 0; j < fs; ++j) d[j] = double(x(i, index_t(j))) - mean_[j];
      for (index_t c = 0; c < out_; ++c) {
        const double* wr = w_.data() + std::size_t(c) * fs;
        double acc = 0;
        for (std::size_t j = 0; j < fs; ++j) acc += wr[j] * d[j];
        y(i, c) = float(acc);
      }
    }
  }

 private:
  whitening_kind kind_ = whitening_kind::zca;
  std::vector<double> mean_, eigenvalues_, w_;
  index_t out_ = 0;
};

}  // namespace fnn::data
