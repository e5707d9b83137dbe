#pragma once
// Y = X W^T for a few rows of X (inference on one to gemv_max_rows samples), W stored n x k as a dense layer
// stores it ([out, in]), with the same element-wise epilogue contract as the GEMM (epilogue.hpp: apply(v, row,
// col), V = simd::batch<T> for full blocks of columns, T for the last partial block):
//
//   gemv(m, n, k, x, ldx, w, ldw, y, ldy, epilogue);   // y[i * ldy + o] = apply(sum_p x[i * ldx + p] * w[o * ldw + p])
//
// At batch 1 a layer is bound by reading its weights (1024 x 1024 floats = 4 MB, far more than the 4 KB of
// inputs), so W is streamed once, in place, row after row: nothing is packed and nothing but y is written. A
// block of `lanes` rows of W is dotted with each x row, one vector accumulator per W row (independent FMA
// chains, the x vector loaded once per step for all of them), and the block's `lanes` horizontal sums come out
// of one simd::reduce_add_each as one vector, so the epilogue runs vectorized over output columns. Two x rows at
// a time share each W load (half a block of W rows per pass, 8 accumulators on AVX2), and k is cut into chunks
// whose W block fits in L1, so the other rows of a group reread it from L1, not from memory.
//
// Order of the sums: each dot product is lane-wise partial sums over k, then the lane tree of reduce_add_each,
// then the k tail (k mod lanes) in order. It is not the GEMM's order, so results agree with gemm() to rounding,
// not bit for bit. There is no shortcut for zeros, so NaN and infinity in x or W propagate as in a plain sum
// (NaN * 0 is NaN); y is only written, never read. The oracle is kernels::gemm_reference (tests/unit/kernels).
// Single-threaded: at these sizes waking a second thread costs more than half of a ~10-200 us product saves
// on a shared machine, and results stay the same for any thread count.
#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels {

// Largest batch that network inference runs through gemv; bigger batches go to the packed GEMM. Measured with
// bench/eval (product_gemv / product_gemm, bench/results/eval.md): on 1024 x 1024 weights gemv took 0.6x the
// GEMM's time at 16 rows (and 0.5-0.9x from 1 to 12), the GEMM's register tile catching up beyond.
inline constexpr index_t gemv_max_rows = 16;
// Rows of X that share one pass over W (their accumulators live together); more rows take further passes.
inline constexpr index_t gemv_group_rows = 8;

namespace detail {

template <class T>
using gemv_vector = std::conditional_t<simd::enabled, simd::batch<T>, T>;

// acc[r] += x[p0 .. p1) * w_r[p0 .. p1) lane-wise, for the R = lanes rows of a block; p1 - p0 a multiple of lanes.
template <class V, class T>
inline void gemv_chunk(index_t p0, index_t p1, const T* x, const T* const* w, V* acc) {
  constexpr std::size_t r_count = simd::lanes_v<V>;
  V a[r_count];
#pragma GCC unroll 16
  for (std::size_t r = 0; r < r_count; ++r) a[r] = acc[r];
  for (index_t p = p0; p < p1; p += index_t(r_count)) {
    const V xv = simd::load_as<V>(x + p);
#pragma GCC unroll 16
    for (std::size_t r = 0; r < r_count; ++r) a[r] = simd::fma(simd::load_as<V>(w[r] + p), xv, a[r]);
  }
#pragma GCC unroll 16
  for (std::size_t r = 0; r < r_count; ++r) acc[r] = a[r];
}

// The same for two x rows sharing every W load, over the half = lanes / 2 rows of W in w[0 .. half): acc[r] for
// row a, acc[half + r] for row b. Half as many W loads per FMA, and 8 accumulators on AVX2 (16 with 16 lanes), so
// this is what runs for m >= 2.
template <class V, class T>
inline void gemv_chunk_pair(index_t p0, index_t p1, const T* xa, const T* xb, const T* const* w, V* acc) {
  constexpr std::size_t lanes = simd::lanes_v<V>, half = lanes / 2;
  V a[lanes];
#pragma GCC unroll 16
  for (std::size_t r = 0; r < lanes; ++r) a[r] = acc[r];
  for (index_t p = p0; p < p1; p += index_t(lanes)) {
    const V xav = simd::load_as<V>(xa + p), xbv = simd::load_as<V>(xb + p);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < half; ++r) {
      const V wv = simd::load_as<V>(w[r] + p);
      a[r] = simd::fma(wv, xav, a[r]);
      a[half + r] = simd::fma(wv, xbv, a[half + r]);
    }
  }
#pragma GCC unroll 16
  for (std::size_t r = 0; r < lanes; ++r) acc[r] = a[r];
}

template <class Ep, class V>
inline V gemv_apply(const Ep& ep, V v, index_t row, index_t col) {
  if constexpr (requires { ep.apply(v, row, col); }) {
    return static_cast<V>(ep.apply(v, row, col));
  } else {
    return v;
  }
}

// Rows [0, m) of X, m <= gemv_group_rows; `row0` is added to the row index the epilogue sees.
template <class T, class Ep>
void gemv_rows(index_t row0, index_t m, index_t n, index_t k, const T* x, index_t ldx, const T* w, index_t ldw, T* y,
               index_t ldy, const Ep& ep) {
  using V = gemv_vector<T>;
  constexpr index_t lanes = index_t(simd::lanes_v<V>);
  const index_t body = k / lanes * lanes;
  // A chunk of the block (lanes rows x kc values of W) takes 16 KB: it stays in L1 while every x row reads it.
  constexpr index_t kc = std::max<index_t>(lanes, index_t(16384 / (sizeof(T) * std::size_t(lanes))) / lanes * lanes);
  constexpr index_t half = lanes / 2;
  // Rows [0, 2 * pairs) go in pairs (acc[i] then holds the block's first half of W rows for rows i and i + 1,
  // acc[i + 1] the second half), the rest one at a time. Both give each dot product the same order of sums, so a
  // sample's result does not depend on the batch around it.
  const index_t pairs = half > 0 ? m / 2 : 0;
  V acc[gemv_group_rows][lanes];
  for (index_t o0 = 0; o0 < n; o0 += lanes) {
    const index_t cols = std::min(lanes, n - o0);
    // A last partial block repeats row n - 1 in its unused slots (their sums are dropped): no out-of-range read.
    const T* wr[lanes];
    for (index_t r = 0; r < lanes; ++r) wr[r] = w + std::min(o0 + r, n - 1) * ldw;
    for (index_t i = 0; i < m; ++i)
      for (index_t r = 0; r < lanes; ++r) acc[i][r] = V(T(0));
    for (index_t p0 = 0; p0 < body; p0 += kc) {
      const index_t p1 = std::min(body, p0 + kc);
      for (index_t q = 0; q < pairs; ++q) {
        const T* xa = x + 2 * q * ldx;
        gemv_chunk_pair<V>(p0, p1, xa, xa + ldx, wr, acc[2 * q]);
        gemv_chunk_pair<V>(p0, p1, xa, xa + ldx, wr + half, acc[2 * q + 1]);
      }
      for (index_t i = 2 * pairs; i < m; ++i) gemv_chunk<V>(p0, p1, x + i * ldx, wr, acc[i]);
    }
    V sums[gemv_group_rows];
    for (index_t q = 0; q < pairs; ++q) {
      // Lanes [0, half) of the first reduction are row a's first half of the block, [half, lanes) row b's.
      alignas(buffer_alignment) T lo[lanes], hi[lanes], ra[lanes], rb[lanes];
      simd::store_as(lo, simd::reduce_add_each(acc[2 * q]));
      simd::store_as(hi, simd::reduce_add_each(acc[2 * q + 1]));
      for (index_t r = 0; r < half; ++r)
        ra[r] = lo[r], ra[half + r] = hi[r], rb[r] = lo[half + r], rb[half + r] = hi[half + r];
      sums[2 * q] = simd::load_as<V>(ra);
      sums[2 * q + 1] = simd::load_as<V>(rb);
    }
    for (index_t i = 2 * pairs; i < m; ++i) sums[i] = simd::reduce_add_each(acc[i]);
    for (index_t i = 0; i < m; ++i) {
      const T* xi = x + i * ldx;
      V s = sums[i];
      if (body < k) {
        alignas(buffer_alignment) T tail[lanes];
        for (index_t r = 0; r < lanes; ++r) {
          T t = T(0);
          for (index_t p = body; p < k; ++p) t = simd::fma(xi[p], wr[r][p], t);
          tail[r] = t;
        }
        s = s + simd::load_as<V>(tail);
      }
      T* yi = y + i * ldy + o0;
      if (cols == lanes) {
        simd::store_as(yi, gemv_apply(ep, s, row0 + i, o0));
      } else {
        alignas(buffer_alignment) T sums[lanes];
        simd::store_as(sums, s);
        for (index_t r = 0; r < cols; ++r) yi[r] = gemv_apply(ep, sums[r], row0 + i, o0 + r);
      }
    }
  }
}

}  // namespace detail

// Any m works (groups of gemv_group_rows rows, each reading W once); it pays off for m <= gemv_max_rows. k == 0
// gives apply(0). Only apply() is called: an epilogue's reduce(), if it has one, is not (a GEMM's reductions work
// on its register tiles; run products that need them through gemm()).
template <class T, class Ep>
void gemv(index_t m, index_t n, index_t k, const T* x, index_t ldx, const T* w, index_t ldw, T* y, index_t ldy,
          const Ep& ep) {
  if (m <= 0 || n <= 0) return;
  k = std::max<index_t>(k, 0);
  for (index_t i0 = 0; i0 < m; i0 += gemv_group_rows)
    detail::gemv_rows(i0, std::min(gemv_group_rows, m - i0), n, k, x + i0 * ldx, ldx, w, ldw, y + i0 * ldy, ldy, ep);
}

// Eval-mode batch norm (and the dense bias before it) as a per-column affine map, then the activation Fn:
// apply(v) = Fn(v * scale[col] + shift[col]). With it the batch norm folds into the product on the output side
// (diag(scale) W x instead of (diag(scale) W) x): the weights are read as they are, so there is no folded copy
// to compute per call or to keep in step with the parameters.
template <class T, class Fn>
struct affine_activation_epilogue final {
  const T* scale;
  const T* shift;
  template <class V>
  V apply(V v, index_t, index_t col) const {
    return Fn::f(simd::fma(v, simd::load_as<V>(scale + col), simd::load_as<V>(shift + col)));
  }
};

}  // namespace fnn::kernels
