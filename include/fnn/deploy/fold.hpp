#pragma once
// Batch norm folded into the dense layer before it, with the formula and rounding of the core's eval path
// (network/stages.hpp): s = T(gamma / sqrt(var + eps)) in double, W' = W * s and b' = (b - mean) * s + beta in T.
// freeze() and fnn-export both call these, so a header export and a run-time freeze of one checkpoint hold the
// same float bits. The multiply-adds are explicit std::fma (one rounding, exact on every target): written as
// a * b + c, the compiler would contract them into an FMA or not depending on -ffp-contract and -march, and the
// exporter and a test built with other flags would fold to different bits (seen here: folded biases differed).
#include <cmath>
#include <cstddef>

namespace fnn::deploy {

inline constexpr double batch_norm_eps = 1e-5;  // torch.nn.BatchNorm1d's and fnn::batch_norm's

// w: [out, in]; b may be null (a dense layer without bias). Writes out * in weights and out biases.
template <class T>
void fold_dense_batch_norm(std::size_t in, std::size_t out, const T* w, const T* b, const T* gamma, const T* beta,
                           const T* mean, const T* var, float* w_out, float* b_out) noexcept {
  for (std::size_t o = 0; o < out; ++o) {
    const T s = T(double(gamma[o]) / std::sqrt(double(var[o]) + batch_norm_eps));
    for (std::size_t k = 0; k < in; ++k) w_out[o * in + k] = float(w[o * in + k] * s);
    const T bias = b != nullptr ? b[o] : T(0);
    b_out[o] = float(std::fma(bias - mean[o], s, beta[o]));
  }
}

// A batch norm with no dense layer before it, as y = x * scale + shift.
template <class T>
void fold_batch_norm(std::size_t features, const T* gamma, const T* beta, const T* mean, const T* var, float* scale,
                     float* shift) noexcept {
  for (std::size_t j = 0; j < features; ++j) {
    const T r = T(1.0 / std::sqrt(double(var[j]) + batch_norm_eps));
    const T s = gamma[j] * r;
    scale[j] = float(s);
    shift[j] = float(std::fma(-mean[j], s, beta[j]));
  }
}

}  // namespace fnn::deploy
