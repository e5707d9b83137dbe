#pragma once
// The element-wise halves of fused dense + batch_norm + activation stages, each one 2-D expression over the
// expr/ vocabulary (matrix leaves with a leading dimension, per-column vectors, per-column reductions) and an
// activation functor Fn (static f(V) and df(V x, V y), V = T or simd::batch<T>; see layers/activations.hpp).
// expr::assign evaluates it rows outside, columns inside, vectorized across columns (features) with a scalar
// tail that rounds like the lanes, so per-feature vectors (scale, shift, sums) stay in L1.
//
// Train-mode batch norm + activation, per feature j (n rows, u = pre-activation, y = Fn(u)):
//   forward   u = z * scale_j + shift_j,  scale_j = gamma_j * rstd_j, shift_j = beta_j - mean_j * scale_j
//   backward  du = dy * Fn'(u, y);  dbeta_j = sum du;  dgamma_j = sum du * xhat,  xhat = (z - mean_j) * rstd_j
//             dz = gamma_j * rstd_j * (du - dbeta_j / n - xhat * dgamma_j / n)
// (du is simd::activation_gradient, a select for relu.) The reference for all of this is the layer-by-layer
// code in layers/.
//
// Threads (expr/parallel.hpp): a pass over at least parallel_pass_elements values runs on up to num_threads()
// threads. Maps split the rows; passes that sum columns split the columns into ranges whose bounds are
// multiples of the SIMD width, each thread summing its columns over all rows in the usual order, so every
// value, sums included, has the same bits for any thread count.
#include <cmath>
#include <cstddef>
#include <span>
#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/expr/assign.hpp"
#include "fnn/kernels/epilogue.hpp"
#include "fnn/kernels/threads.hpp"
#include "fnn/simd/math.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels {

// Below this many values a pass stays on one thread (expr/parallel.hpp; bench/kernels has the measurement).
using expr::parallel_pass_elements;

// y = Fn(z * scale + shift), per-column scale and shift.
template <class Fn, class T>
void affine_activation(index_t rows, index_t cols, const T* z, index_t ldz, const T* scale, const T* shift, T* y,
                       index_t ldy) {
  const auto Z = expr::matrix(z, rows, cols, ldz);
  expr::assign(expr::matrix(y, rows, cols, ldy),
               expr::activation<Fn>(expr::fma(Z, expr::per_column(scale, cols), expr::per_column(shift, cols))));
}

// First backward pass of batch norm + activation: du = dy * Fn'(u, y) (stored), and the per-column sums
// sum_du = sum du, sum_du_xhat = sum du * xhat (the beta and gamma gradients). u is recomputed from z.
template <class Fn, class T>
void affine_activation_backward_reduce(index_t rows, index_t cols, const T* z, index_t ldz, const T* y, index_t ldy,
                                       const T* dy, index_t lddy, const T* scale, const T* shift, const T* mean,
                                       const T* rstd, T* du, index_t lddu, T* sum_du, T* sum_du_xhat) {
  for (index_t j = 0; j < cols; ++j) sum_du[j] = sum_du_xhat[j] = T(0);
  const auto Z = expr::matrix(z, rows, cols, ldz);
  const auto u = expr::fma(Z, expr::per_column(scale, cols), expr::per_column(shift, cols));
  const auto xhat = (Z - expr::per_column(mean, cols)) * expr::per_column(rstd, cols);
  const auto d = expr::let<0>(
      expr::activation_gradient<Fn>(u, expr::matrix(y, rows, cols, ldy), expr::matrix(dy, rows, cols, lddy)));
  const auto s1 = expr::per_column(sum_du, cols), s2 = expr::per_column(sum_du_xhat, cols);
  expr::assign(d, expr::into(expr::matrix(du, rows, cols, lddu), d), expr::into(s1, s1 + d),
               expr::into(s2, expr::fma(d, xhat, s2)));
}

// Second backward pass: the batch-norm input gradient, written over du (dz may alias du).
template <class T>
void batch_norm_input_gradient(index_t rows, index_t cols, const T* du, index_t lddu, const T* z, index_t ldz,
                               const T* gamma, const T* mean, const T* rstd, const T* sum_du, const T* sum_du_xhat,
                               T* dz, index_t lddz) {
  const T inv_n = T(1) / static_cast<T>(rows);
  const auto r = expr::per_column(rstd, cols);
  const auto xhat = (expr::matrix(z, rows, cols, ldz) - expr::per_column(mean, cols)) * r;
  const auto centred = expr::matrix(du, rows, cols, lddu) - expr::per_column(sum_du, cols) * inv_n -
                       xhat * (expr::per_column(sum_du_xhat, cols) * inv_n);
  expr::assign(expr::matrix(dz, rows, cols, lddz), expr::per_column(gamma, cols) * r * centred);
}

// The same input gradient as coefficients of an a_transform (A = du, Z = z, z_center = mean), for GEMMs that
// read dz while packing du instead of storing it:
//   dz = scale * du + z_scale * (z - mean) + offset,
//   scale = gamma rstd,  z_scale = -gamma rstd^2 sum_du_xhat / n,  offset = -gamma rstd sum_du / n.
// The coefficients are formed in double (one rounding each).
template <class T>
void batch_norm_input_gradient_coefficients(index_t rows, index_t cols, const T* gamma, const T* rstd,
                                            const T* sum_du, const T* sum_du_xhat, T* scale, T* z_scale, T* offset) {
  const double inv_n = 1.0 / static_cast<double>(rows);
  for (index_t j = 0; j < cols; ++j) {
    const double s = double(gamma[j]) * double(rstd[j]);
    scale[j] = static_cast<T>(s);
    z_scale[j] = static_cast<T>(-s * double(rstd[j]) * double(sum_du_xhat[j]) * inv_n);
    offset[j] = static_cast<T>(-s * double(sum_du[j]) * inv_n);
  }
}

// dz = du * scale per column: the input gradient of an eval-mode (or frozen) batch norm, gamma / sqrt(var + eps).
template <class T>
void scale_columns(index_t rows, index_t cols, const T* du, index_t lddu, const T* scale, T* dz, index_t lddz) {
  expr::assign(expr::matrix(dz, rows, cols, lddz), expr::matrix(du, rows, cols, lddu) * expr::per_column(scale, cols));
}

// Layer norm + activation (a dense + layer_norm + activation stage), per row i (sample) over its f features:
//   forward   mean_i, rstd_i = 1 / sqrt(var_i + eps);  xhat = (z - mean_i) rstd_i;  u = gamma_j xhat + beta_j;
//             y = Fn(u)
//   backward  du = dy * Fn'(u, y);  dbeta_j += sum_i du;  dgamma_j += sum_i du xhat;  g = du gamma_j;
//             dz = rstd_i (g - sum_j g / f - xhat sum_j g xhat / f)
// Each row is swept while it is in L1 (its statistics, then its outputs), rows split over threads.
template <class Z, class Mean, class Rstd, class Gamma, class Beta>
auto layer_norm_affine(const Z& z, const Mean& mean, const Rstd& rstd, const Gamma& gamma, const Beta& beta) {
  return expr::fma(gamma, (z - mean) * rstd, beta);
}

template <class Fn, class T>
void layer_norm_activation(index_t rows, index_t cols, const T* z, index_t ldz, const T* gamma, const T* beta,
                           double eps, T* mean, T* rstd, T* y, index_t ldy) {
  const auto f = static_cast<std::size_t>(cols);
  const auto g = expr::array(std::span<const T>(gamma, f)), b = expr::array(std::span<const T>(beta, f));
  expr::for_row_ranges(rows, cols, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const auto zi = expr::array(std::span<const T>(z + i * ldz, f));
      const T m = expr::sum(zi) / static_cast<T>(cols);
      const T var = expr::sum((zi - m) * (zi - m)) / static_cast<T>(cols);
      const T r = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var) + eps));
      mean[i] = m;
      rstd[i] = r;
      expr::assign(expr::array(std::span<T>(y + i * ldy, f)),
                   expr::activation<Fn>(layer_norm_affine(zi, expr::scalar(m), expr::scalar(r), g, b)));
    }
  });
}

// The backward of layer_norm_activation: dz (into du, which then holds dz) and the gamma and beta gradients
// (accumulated, as every parameter gradient; both null: frozen, not computed).
template <class Fn, class T>
void layer_norm_activation_backward(index_t rows, index_t cols, const T* z, index_t ldz, const T* y, index_t ldy,
                                    const T* dy, index_t lddy, const T* gamma, const T* beta, const T* mean,
                                    const T* rstd, T* du, index_t lddu, T* gamma_grad, T* beta_grad) {
  // Pass 1, columns split: du and the per-feature sums.
  const auto Z = expr::matrix(z, rows, cols, ldz);
  const auto M = expr::per_row(mean, rows), R = expr::per_row(rstd, rows);
  const auto xhat = (Z - M) * R;
  const auto u = layer_norm_affine(Z, M, R, expr::per_column(gamma, cols), expr::per_column(beta, cols));
  const auto grad =
      expr::activation_gradient<Fn>(u, expr::matrix(y, rows, cols, ldy), expr::matrix(dy, rows, cols, lddy));
  const auto d = expr::let<0>(grad);
  if (gamma_grad != nullptr || beta_grad != nullptr) {
    const auto db = expr::per_column(beta_grad, cols), dg = expr::per_column(gamma_grad, cols);
    expr::assign(d, expr::into(expr::matrix(du, rows, cols, lddu), d), expr::into(db, db + d),
                 expr::into(dg, expr::fma(d, xhat, dg)));
  } else {
    expr::assign(expr::matrix(du, rows, cols, lddu), grad);
  }
  // Pass 2, rows split: the two row sums, then dz over du, while the row is in L1.
  const auto f = static_cast<std::size_t>(cols);
  const auto G = expr::array(std::span<const T>(gamma, f));
  const T inv_f = T(1) / static_cast<T>(cols);
  expr::for_row_ranges(rows, cols, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const auto dui = expr::array(std::span<T>(du + i * lddu, f));
      const auto xh = (expr::array(std::span<const T>(z + i * ldz, f)) - mean[i]) * rstd[i];
      const T a = expr::sum(dui * G) * inv_f, c = expr::sum(dui * G * xh) * inv_f;
      expr::assign(dui, rstd[i] * (dui * G - a - xh * c));
    }
  });
}

// Activation backward: dz = dy * Fn'(z, y), and bias_grad += column sums of dz (when bias_grad is set).
template <class Fn, class T>
void activation_backward(index_t rows, index_t cols, const T* z, index_t ldz, const T* y, index_t ldy, const T* dy,
                         index_t lddy, T* dz, index_t lddz, T* bias_grad) {
  const auto d = expr::activation_gradient<Fn>(expr::matrix(z, rows, cols, ldz), expr::matrix(y, rows, cols, ldy),
                                               expr::matrix(dy, rows, cols, lddy));
  const auto DZ = expr::matrix(dz, rows, cols, lddz);
  if (bias_grad) {
    const auto b = expr::per_column(bias_grad, cols);
    const auto dv = expr::let<0>(d);
    expr::assign(dv, expr::into(DZ, dv), expr::into(b, b + dv));
  } else {
    expr::assign(DZ, d);
  }
}

// sums += column sums of a (a dense layer's bias gradient).
template <class T>
void add_column_sums(index_t rows, index_t cols, const T* a, index_t lda, T* sums) {
  const auto s = expr::per_column(sums, cols);
  expr::assign(expr::into(s, s + expr::matrix(a, rows, cols, lda)));
}

// The one GEMM epilogue of fused stages: + bias[col], a side store of that pre-activation value (backward
// needs it), an activation, and per-column batch statistics — each optional, chosen at run time. Every
// fused GEMM of a network (forward and backward) therefore instantiates the GEMM once: compile time
// was the cost of one GEMM instantiation per epilogue type (about 2 s each with GCC 12), while these
// branches are taken once per register and the activation is one indirect call per register.
template <class T>
struct stage_epilogue final {
  using vector = simd::batch<T>;
  const T* bias = nullptr;
  T* pre = nullptr;
  index_t ld_pre = 0;
  vector (*activation_vector)(vector) = nullptr;
  T (*activation_scalar)(T) = nullptr;
  column_moments<T>* moments = nullptr;

  template <class V>
  V apply(V v, index_t row, index_t col) const {
    if (bias) v = v + simd::load_as<V>(bias + col);
    if (pre) simd::store_as(pre + row * ld_pre + col, v);
    if constexpr (std::is_same_v<V, T>) {
      return activation_scalar ? activation_scalar(v) : v;
    } else {
      return activation_vector ? activation_vector(v) : v;
    }
  }
  void reduce(const T* tile, index_t ldc, index_t row, index_t rows, index_t col, index_t cols) {
    if (moments) moments->reduce(tile, ldc, row, rows, col, cols);
  }
};

namespace detail {
template <class Fn, class V>
V activation_call(V v) {
  return Fn::f(v);
}
}  // namespace detail

// Sets the epilogue's activation to Fn.
template <class Fn, class T>
stage_epilogue<T> with_activation(stage_epilogue<T> e) {
  e.activation_vector = &detail::activation_call<Fn, typename stage_epilogue<T>::vector>;
  e.activation_scalar = &detail::activation_call<Fn, T>;
  return e;
}

}  // namespace fnn::kernels
