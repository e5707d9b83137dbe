#pragma once
// GEMM as blocks of dot products, for Y = X W^T (op(A) = A, op(B) = B^T: both operands contiguous along k)
// when m <= 4 (inference on a few samples): each W element is used at most 4 times, so packing W would cost more
// than the product (1x784x256: 15 us instead of 92 us, CPU time). Nothing is packed; a tile of RI x RJ dot
// products keeps RI * RJ vector accumulators over k. (For small n, e.g. 256x1024x10, the packed path measured
// ~10% faster, so it stays there.)
#include <algorithm>
#include <utility>

#include "fnn/core/config.hpp"
#include "fnn/kernels/detail/gemm_config.hpp"
#include "fnn/kernels/detail/gemm_micro.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels::detail {

inline constexpr index_t dot_ri = 4, dot_rj = 4;

// out[i * dot_rj + j] = sum_p a[i * lda + p] * b[j * ldb + p] for i < RI, j < RJ.
template <class V, index_t RI, index_t RJ, class T>
FNN_GEMM_INLINE void dot_tile(index_t k, const T* a, index_t lda, const T* b, index_t ldb, T* out) {
  constexpr index_t w = static_cast<index_t>(simd::lanes_v<V>);
  V acc[RI][RJ];
#pragma GCC unroll 4
  for (index_t i = 0; i < RI; ++i)
#pragma GCC unroll 4
    for (index_t j = 0; j < RJ; ++j) acc[i][j] = V(T(0));
  index_t p = 0;
  for (; p + w <= k; p += w) {
    V bv[RJ];
#pragma GCC unroll 4
    for (index_t j = 0; j < RJ; ++j) bv[j] = simd::load_as<V>(b + j * ldb + p);
#pragma GCC unroll 4
    for (index_t i = 0; i < RI; ++i) {
      const V av = simd::load_as<V>(a + i * lda + p);
#pragma GCC unroll 4
      for (index_t j = 0; j < RJ; ++j) acc[i][j] = simd::fma(av, bv[j], acc[i][j]);
    }
  }
  for (index_t i = 0; i < RI; ++i)
    for (index_t j = 0; j < RJ; ++j) {
      T sum = simd::reduce_add(acc[i][j]);
      for (index_t q = p; q < k; ++q) sum += a[i * lda + q] * b[j * ldb + q];
      out[i * dot_rj + j] = sum;
    }
}

template <class V, class T, index_t... I>
FNN_GEMM_INLINE void dot_tile_dispatch(std::integer_sequence<index_t, I...>, index_t ri, index_t rj, index_t k,
                                       const T* a, index_t lda, const T* b, index_t ldb, T* out) {
  // (RI, RJ) = (I / dot_rj + 1, I % dot_rj + 1)
  (((ri == I / dot_rj + 1 && rj == I % dot_rj + 1) &&
    (dot_tile<V, I / dot_rj + 1, I % dot_rj + 1>(k, a, lda, b, ldb, out), true)) ||
   ...);
}

// C[r.m0 .. r.m1) x [r.n0 .. r.n1) for ta = no, tb = yes. Epilogue calls follow the same contract as the packed
// path: apply() per element, reduce() per block of gemm_config::mr rows (aligned) x gemm_config::nr columns.
template <class T, class Rect, class Ep>
void gemm_dot_rect(index_t k, const Rect& r, const T* a, index_t lda, const T* b, index_t ldb,
                   const store_mode<T>& mode, T* c, index_t ldc, Ep& ep) {
  using cfg = gemm_config<T>;
  using V = typename cfg::vec;
  alignas(buffer_alignment) T out[dot_ri * dot_rj];
  for (index_t ib = r.m0; ib < r.m1; ib += cfg::mr) {
    const index_t ie = std::min(r.m1, ib + cfg::mr);
    for (index_t jb = r.n0; jb < r.n1; jb += cfg::nr) {
      const index_t je = std::min(r.n1, jb + cfg::nr);
      for (index_t i = ib; i < ie; i += dot_ri) {
        const index_t ri = std::min(dot_ri, ie - i);
        for (index_t j = jb; j < je; j += dot_rj) {
          const index_t rj = std::min(dot_rj, je - j);
          dot_tile_dispatch<V>(std::make_integer_sequence<index_t, dot_ri * dot_rj>{}, ri, rj, k, a + i * lda, lda,
                               b + j * ldb, ldb, out);
          for (index_t ii = 0; ii < ri; ++ii)
            for (index_t jj = 0; jj < rj; ++jj) {
              T* cij = c + (i + ii) * ldc + j + jj;
              *cij = finish_value<T>(out[ii * dot_rj + jj], cij, mode, ep, true, i + ii, j + jj);
            }
        }
      }
      if constexpr (epilogue_with_reduce<Ep, T>) {
        ep.reduce(static_cast<const T*>(c + ib * ldc + jb), ldc, ib, ie - ib, jb, je - jb);
      }
    }
  }
}

}  // namespace fnn::kernels::detail
