#pragma once
// The register-tiled micro-kernel (MR x NV registers of accumulators, one rank-1 update per k) and the tile
// store that applies alpha, beta and the epilogue.
#include <algorithm>
#include <type_traits>
#include <utility>

#include "fnn/core/config.hpp"
#include "fnn/kernels/epilogue.hpp"
#include "fnn/simd/simd.hpp"

#if defined(__GNUC__)
#define FNN_GEMM_INLINE inline __attribute__((always_inline))
#else
#define FNN_GEMM_INLINE inline
#endif

namespace fnn::kernels::detail {

// acc[i][v] = sum_p a[p * MR + i] * b[p * NR + v * W + (0 .. W)], the packed slivers of pack_a / pack_b.
// Every loop has a compile-time trip count and is unrolled, so acc lives in registers; each A element is
// broadcast straight from memory (an embedded-broadcast FMA operand on AVX-512).
// R <= MR rows are computed from slivers packed with MR rows (edge tiles run a shorter kernel instead of
// multiplying padding); acc is always MR x NV so that store_tile has one form.
//
// PackedA = false reads A unpacked, row-major with row stride lda (op(A) = A): used when one B sliver covers all
// of n, so every A element is used once and packing it would only add a pass. The fma sequence per element is
// the same, so both forms give the same bits.
template <class V, index_t R, index_t NV, index_t MR, index_t NR, bool PackedA, class T>
FNN_GEMM_INLINE void micro_tile(index_t kc, const T* __restrict a, index_t lda, const T* __restrict b,
                                V (&acc)[MR][NR / simd::lanes_v<V>]) {
  constexpr index_t w = static_cast<index_t>(simd::lanes_v<V>);
  V c[R][NV];
#pragma GCC unroll 32
  for (index_t i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (index_t v = 0; v < NV; ++v) c[i][v] = V(T(0));
#pragma GCC unroll 2
  for (index_t p = 0; p < kc; ++p) {
    V bv[NV];
#pragma GCC unroll 8
    for (index_t v = 0; v < NV; ++v) bv[v] = simd::load_aligned_as<V>(b + v * w);
#pragma GCC unroll 32
    for (index_t i = 0; i < R; ++i) {
      const V ai(PackedA ? a[i] : a[i * lda]);
#pragma GCC unroll 8
      for (index_t v = 0; v < NV; ++v) c[i][v] = simd::fma(ai, bv[v], c[i][v]);
    }
    a += PackedA ? MR : 1;
    b += NR;
  }
#pragma GCC unroll 32
  for (index_t i = 0; i < R; ++i)
#pragma GCC unroll 8
    for (index_t v = 0; v < NV; ++v) acc[i][v] = c[i][v];
}

// Runs the micro-kernel specialised for `rows` (1..MR) and for the ceil(cols / W) registers of columns needed.
template <class V, index_t MR, index_t NR, bool PackedA, class T, index_t... I>
FNN_GEMM_INLINE void micro_tile_dispatch(std::integer_sequence<index_t, I...>, index_t rows, index_t cols, index_t kc,
                                         const T* a, index_t lda, const T* b, V (&acc)[MR][NR / simd::lanes_v<V>]) {
  constexpr index_t w = static_cast<index_t>(simd::lanes_v<V>);
  constexpr index_t nv = NR / w;
  if (rows == MR && cols > NR - w) {
    micro_tile<V, MR, nv, MR, NR, PackedA>(kc, a, lda, b, acc);
    return;
  }
  const index_t vecs = (cols + w - 1) / w;
  // I enumerates (rows, registers) = (I / nv + 1, I % nv + 1).
  ((rows == I / nv + 1 && vecs == I % nv + 1 &&
    (micro_tile<V, I / nv + 1, I % nv + 1, MR, NR, PackedA>(kc, a, lda, b, acc), true)) ||
   ...);
}

// How a tile's accumulators combine with C: c = alpha * acc + beta * c, specialised for the common alphas/betas
// so the hot path has no multiplies it does not need. beta == 0 never reads C (BLAS semantics: C may be garbage).
template <class T>
struct store_mode {
  T alpha, beta;
  bool alpha_one, beta_zero, beta_one;
  store_mode(T al, T be) : alpha(al), beta(be), alpha_one(al == T(1)), beta_zero(be == T(0)), beta_one(be == T(1)) {}

  // No plain a * b + c: the compiler may contract it into an FMA in one code path (a full tile) and not in
  // another (an edge tile), and the same element would get different bits depending on the tiling.
  template <class V>
  FNN_GEMM_INLINE V combine(V acc, const T* c) const {
    if (beta_zero) return alpha_one ? acc : acc * V(alpha);
    const V old = simd::load_as<V>(c);
    if (beta_one) return alpha_one ? acc + old : simd::fma(acc, V(alpha), old);
    return simd::fma(V(beta), old, alpha_one ? acc : acc * V(alpha));
  }
};

template <class V, class T, class Ep>
FNN_GEMM_INLINE V finish_value(V x, const T* c, const store_mode<T>& mode, const Ep& ep, bool last, index_t row,
                               index_t col) {
  x = mode.template combine<V>(x, c);
  if constexpr (epilogue_with_apply<Ep, V>) {
    if (last) x = ep.apply(x, row, col);
  }
  return x;
}

// Writes an mr x nr tile (mr <= MR, nr <= NR) at C(row, col). `last` marks the final k block: only then do the
// epilogue's apply() and reduce() run.
template <class V, index_t MR, index_t NV, class T, class Ep>
FNN_GEMM_INLINE void store_tile(V (&acc)[MR][NV], T* c, index_t ldc, index_t row, index_t col, index_t mr, index_t nr,
                                const store_mode<T>& mode, Ep& ep, bool last) {
  constexpr index_t w = static_cast<index_t>(simd::lanes_v<V>);
  constexpr index_t full_nr = NV * w;
  if (mr == MR && nr == full_nr) {
#pragma GCC unroll 32
    for (index_t i = 0; i < MR; ++i) {
      T* ci = c + i * ldc;
#pragma GCC unroll 8
      for (index_t v = 0; v < NV; ++v) {
        const V x = finish_value<V>(acc[i][v], ci + v * w, mode, ep, last, row + i, col + v * w);
        simd::store_as<V>(ci + v * w, x);
      }
    }
  } else {
    alignas(buffer_alignment) T tmp[MR * full_nr];
    // Only the registers the edge kernel computed (micro_tile_dispatch leaves the others unset).
    for (index_t i = 0; i < mr; ++i)
      for (index_t v = 0; v * w < nr; ++v) simd::store_as<V>(tmp + i * full_nr + v * w, acc[i][v]);
    for (index_t i = 0; i < mr; ++i) {
      T* ci = c + i * ldc;
      const T* ti = tmp + i * full_nr;
      index_t j = 0;
      for (; j + w <= nr; j += w) {
        const V x = finish_value<V>(simd::load_aligned_as<V>(ti + j), ci + j, mode, ep, last, row + i, col + j);
        simd::store_as<V>(ci + j, x);
      }
      for (; j < nr; ++j) ci[j] = finish_value<T>(ti[j], ci + j, mode, ep, last, row + i, col + j);
    }
  }
  if constexpr (epilogue_with_reduce<Ep, T>) {
    if (last) ep.reduce(static_cast<const T*>(c), ldc, row, mr, col, nr);
  }
}

}  // namespace fnn::kernels::detail
