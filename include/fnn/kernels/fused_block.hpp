#pragma once
// The element-wise halves of fused dense + batch_norm + activation stages, written over raw arrays
// and an activation functor Fn (static f(V) and df(V x, V y), V = T or simd::batch<T>; see
// layers/activations.hpp). Every loop runs rows outside, columns inside, vectorized across columns
// (features) with a scalar tail, so per-feature vectors (scale, shift, sums) stay in L1.
//
// Train-mode batch norm + activation, per feature j (n rows, u = pre-activation, y = Fn(u)):
//   forward   u = z * scale_j + shift_j,  scale_j = gamma_j * rstd_j, shift_j = beta_j - mean_j * scale_j
//   backward  du = dy * Fn'(u, y);  dbeta_j = sum du;  dgamma_j = sum du * xhat,  xhat = (z - mean_j) * rstd_j
//             dz = gamma_j * rstd_j * (du - dbeta_j / n - xhat * dgamma_j / n)
// (du is simd::activation_gradient, a select for relu.) The reference for all of this is the layer-by-layer
// code in layers/.
//
// Threads (kernels/threads.hpp): a pass over at least parallel_pass_elements values runs on up to
// num_threads() threads. Maps split the rows; passes that sum columns split the columns into ranges whose
// bounds are multiples of the SIMD width, each thread summing its columns over all rows in the usual order,
// so every value, sums included, has the same bits for any thread count.
#include <algorithm>
#include <cstddef>

#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/kernels/epilogue.hpp"
#include "fnn/kernels/threads.hpp"
#include "fnn/simd/math.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels {

// Calls body.template operator()<V>(j) for j = j0, j0 + w, ... with V = batch<T>, then for the tail with V = T.
// j0 is 0 or a multiple of the SIMD width, so a column takes the same path whatever range it is part of.
template <class T, class Body>
inline void for_columns(index_t j0, index_t j1, Body&& body) {
  if constexpr (simd::enabled) {
    constexpr auto w = static_cast<index_t>(simd::width<T>);
    const index_t full = j0 + (j1 - j0) / w * w;
    for (index_t j = j0; j < full; j += w) body.template operator()<simd::batch<T>>(j);
    // The tail is shorter than a register; saying so keeps GCC from reasoning about (and warning on,
    // -Waggressive-loop-optimizations) absurd trip counts of a loop it would otherwise vectorize.
    const int tail = static_cast<int>(j1 - full);
    for (int t = 0; t < tail && t < static_cast<int>(w); ++t) body.template operator()<T>(full + t);
  } else {
    for (index_t j = j0; j < j1; ++j) body.template operator()<T>(j);
  }
}
template <class T, class Body>
inline void for_columns(index_t cols, Body&& body) {
  for_columns<T>(0, cols, static_cast<Body&&>(body));
}

// Below this many values a pass stays on one thread: waking another one (a few microseconds with
// OMP_WAIT_POLICY=passive) costs more than it saves. See bench/kernels for the measurement.
inline constexpr index_t parallel_pass_elements = 64 * 1024;

namespace detail {

inline int pass_threads(index_t rows, index_t cols, index_t max_parts) {
  const index_t by_size = rows * cols / parallel_pass_elements;
  return static_cast<int>(std::clamp<index_t>(std::min<index_t>(by_size, max_parts), 1, num_threads()));
}

// body(t) for t < parts, each on its own thread.
template <class Body>
void run_parts(int parts, Body& body) {
#if defined(FNN_HAS_OPENMP)
  if (parts > 1) {
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int t = 0; t < parts; ++t) body(t);
    return;
  }
#endif
  for (int t = 0; t < parts; ++t) body(t);
}

}  // namespace detail

// body(i0, i1) over row ranges that partition [0, rows), concurrently when the pass is big enough (for maps).
template <class Body>
void for_row_ranges(index_t rows, index_t cols, Body&& body) {
  const int parts = detail::pass_threads(rows, cols, rows);
  auto part = [&](int t) { body(rows * t / parts, rows * (t + 1) / parts); };
  detail::run_parts(parts, part);
}

// body(j0, j1) over column ranges that partition [0, cols), bounds multiples of the SIMD width of T (for
// column reductions: each column is then summed by one thread, in row order, whatever the thread count).
template <class T, class Body>
void for_column_ranges(index_t rows, index_t cols, Body&& body) {
  constexpr auto w = static_cast<index_t>(simd::width<T>);
  const index_t groups = (cols + w - 1) / w;
  const int parts = detail::pass_threads(rows, cols, groups);
  auto part = [&](int t) { body(std::min(cols, groups * t / parts * w), std::min(cols, groups * (t + 1) / parts * w)); };
  detail::run_parts(parts, part);
}

// y = Fn(z * scale + shift), per-column scale and shift.
template <class Fn, class T>
void affine_activation(index_t rows, index_t cols, const T* z, index_t ldz, const T* scale, const T* shift, T* y,
                       index_t ldy) {
  for_row_ranges(rows, cols, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const T* zi = z + i * ldz;
      T* yi = y + i * ldy;
      for_columns<T>(cols, [&]<class V>(index_t j) {
        const V u = simd::fma(simd::load_as<V>(zi + j), simd::load_as<V>(scale + j), simd::load_as<V>(shift + j));
        simd::store_as(yi + j, Fn::f(u));
      });
    }
  });
}

// First backward pass of batch norm + activation: du = dy * Fn'(u, y) (stored), and the per-column sums
// sum_du += du, sum_du_xhat += du * xhat (the beta and gamma gradients). u is recomputed from z.
template <class Fn, class T>
void affine_activation_backward_reduce(index_t rows, index_t cols, const T* z, index_t ldz, const T* y, index_t ldy,
                                       const T* dy, index_t lddy, const T* scale, const T* shift, const T* mean,
                                       const T* rstd, T* du, index_t lddu, T* sum_du, T* sum_du_xhat) {
  for_column_ranges<T>(rows, cols, [&](index_t j0, index_t j1) {
    for (index_t j = j0; j < j1; ++j) sum_du[j] = sum_du_xhat[j] = T(0);
    for (index_t i = 0; i < rows; ++i) {
      const T *zi = z + i * ldz, *yi = y + i * ldy, *dyi = dy + i * lddy;
      T* dui = du + i * lddu;
      for_columns<T>(j0, j1, [&]<class V>(index_t j) {
        const V zv = simd::load_as<V>(zi + j);
        const V u = simd::fma(zv, simd::load_as<V>(scale + j), simd::load_as<V>(shift + j));
        const V d = simd::activation_gradient<Fn>(u, simd::load_as<V>(yi + j), simd::load_as<V>(dyi + j));
        simd::store_as(dui + j, d);
        const V xhat = (zv - simd::load_as<V>(mean + j)) * simd::load_as<V>(rstd + j);
        simd::store_as(sum_du + j, simd::load_as<V>(sum_du + j) + d);
        simd::store_as(sum_du_xhat + j, simd::fma(d, xhat, simd::load_as<V>(sum_du_xhat + j)));
      });
    }
  });
}

// Second backward pass: the batch-norm input gradient, written over du (dz may alias du).
template <class T>
void batch_norm_input_gradient(index_t rows, index_t cols, const T* du, index_t lddu, const T* z, index_t ldz,
                               const T* gamma, const T* mean, const T* rstd, const T* sum_du, const T* sum_du_xhat,
                               T* dz, index_t lddz) {
  const T inv_n = T(1) / static_cast<T>(rows);
  for_row_ranges(rows, cols, [&](index_t i0, index_t i1) {
    for (index_t i = i0; i < i1; ++i) {
      const T *dui = du + i * lddu, *zi = z + i * ldz;
      T* dzi = dz + i * lddz;
      for_columns<T>(cols, [&]<class V>(index_t j) {
        const V r = simd::load_as<V>(rstd + j);
        const V xhat = (simd::load_as<V>(zi + j) - simd::load_as<V>(mean + j)) * r;
        const V centred = simd::load_as<V>(dui + j) - simd::load_as<V>(sum_du + j) * V(inv_n) -
                          xhat * (simd::load_as<V>(sum_du_xhat + j) * V(inv_n));
        simd::store_as(dzi + j, simd::load_as<V>(gamma + j) * r * centred);
      });
    }
  });
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

// Activation backward: dz = dy * Fn'(z, y), and bias_grad += column sums of dz (when bias_grad is set).
template <class Fn, class T>
void activation_backward(index_t rows, index_t cols, const T* z, index_t ldz, const T* y, index_t ldy, const T* dy,
                         index_t lddy, T* dz, index_t lddz, T* bias_grad) {
  const auto block = [&](index_t i0, index_t i1, index_t j0, index_t j1) {
    for (index_t i = i0; i < i1; ++i) {
      const T *zi = z + i * ldz, *yi = y + i * ldy, *dyi = dy + i * lddy;
      T* dzi = dz + i * lddz;
      for_columns<T>(j0, j1, [&]<class V>(index_t j) {
        const V d = simd::activation_gradient<Fn>(simd::load_as<V>(zi + j), simd::load_as<V>(yi + j),
                                                  simd::load_as<V>(dyi + j));
        simd::store_as(dzi + j, d);
        if (bias_grad) simd::store_as(bias_grad + j, simd::load_as<V>(bias_grad + j) + d);
      });
    }
  };
  if (bias_grad) {
    for_column_ranges<T>(rows, cols, [&](index_t j0, index_t j1) { block(0, rows, j0, j1); });
  } else {
    for_row_ranges(rows, cols, [&](index_t i0, index_t i1) { block(i0, i1, 0, cols); });
  }
}

// sums += column sums of a (a dense layer's bias gradient).
template <class T>
void add_column_sums(index_t rows, index_t cols, const T* a, index_t lda, T* sums) {
  for_column_ranges<T>(rows, cols, [&](index_t j0, index_t j1) {
    for (index_t i = 0; i < rows; ++i) {
      const T* ai = a + i * lda;
      for_columns<T>(j0, j1, [&]<class V>(index_t j) {
        simd::store_as(sums + j, simd::load_as<V>(sums + j) + simd::load_as<V>(ai + j));
      });
    }
  });
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
