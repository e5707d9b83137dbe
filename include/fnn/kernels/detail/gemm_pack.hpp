#pragma once
// Packing of op(A) and op(B) blocks into the contiguous slivers the micro-kernel reads linearly. Transposes are
// resolved here, so the micro-kernel has a single form; edges are zero-padded to whole slivers, so it never
// needs bounds checks.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/kernels/a_transform.hpp"
#include "fnn/kernels/gemm_reference.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels::detail {

// pack_a with the operand transform: op(A') instead of op(A) (a_transform.hpp). Same layout as pack_a.
template <index_t MR, class T>
void pack_a_transformed(transpose ta, const T* a, index_t lda, const a_transform<T>& tf, index_t i0, index_t mc,
                        index_t p0, index_t kc, T* dst) {
  using V = std::conditional_t<simd::enabled, simd::batch<T>, T>;
  constexpr index_t w = static_cast<index_t>(simd::lanes_v<V>);
  for (index_t s = 0; s < mc; s += MR, dst += kc * MR) {
    const index_t rows = std::min(MR, mc - s);
    if (ta == transpose::yes) {
      // op(A')(i, p) = A'(p, i): the coefficients belong to the sliver's rows, so they are loaded once.
      const index_t c0 = i0 + s;
      T cs[MR], ct[MR], cm[MR], cu[MR];
      for (index_t r = 0; r < MR; ++r) {
        const index_t c = c0 + std::min(r, rows - 1);
        cs[r] = tf.scale[c], ct[r] = tf.z_scale[c], cm[r] = tf.z_center[c], cu[r] = tf.offset[c];
      }
      for (index_t p = 0; p < kc; ++p) {
        const T* src = a + (p0 + p) * lda + c0;
        const T* zs = tf.z + (p0 + p) * tf.ldz + c0;
        T* d = dst + p * MR;
        if constexpr (w > 1 && MR % w == 0) {
          if (rows == MR) {
            for (index_t r = 0; r < MR; r += w) simd::store_as<V>(d + r, tf.template at<V>(src + r, zs + r, c0 + r));
            continue;
          }
        }
        if (rows == MR) {
          for (index_t r = 0; r < MR; ++r) d[r] = simd::fma(cs[r], src[r], simd::fma(ct[r], zs[r] - cm[r], cu[r]));
        } else {
          for (index_t r = 0; r < rows; ++r) d[r] = simd::fma(cs[r], src[r], simd::fma(ct[r], zs[r] - cm[r], cu[r]));
          for (index_t r = rows; r < MR; ++r) d[r] = T(0);
        }
      }
    } else {
      // op(A')(i, p) = A'(i, p): transform each row a register at a time (vectorized over p), scatter with
      // stride MR.
      for (index_t r = 0; r < rows; ++r) {
        const index_t i = i0 + s + r;
        const T* src = a + i * lda;
        const T* zs = tf.z + i * tf.ldz;
        index_t p = 0;
        if constexpr (w > 1) {
          alignas(buffer_alignment) T v[w];
          for (; p + w <= kc; p += w) {
            simd::store_as<V>(v, tf.template at<V>(src + p0 + p, zs + p0 + p, p0 + p));
            for (index_t l = 0; l < w; ++l) dst[(p + l) * MR + r] = v[l];
          }
        }
        for (; p < kc; ++p) dst[p * MR + r] = tf.template at<T>(src + p0 + p, zs + p0 + p, p0 + p);
      }
      for (index_t r = rows; r < MR; ++r)
        for (index_t p = 0; p < kc; ++p) dst[p * MR + r] = T(0);
    }
  }
}

// Packs op(A)[i0 .. i0+mc) x [p0 .. p0+kc) as slivers of MR rows: element (r, p) of sliver s goes to
// dst[s * kc * MR + p * MR + r]. Rows past mc are zero. With a transform (tf != nullptr), op(A') is packed.
template <index_t MR, class T>
void pack_a(transpose ta, const T* a, index_t lda, index_t i0, index_t mc, index_t p0, index_t kc, T* dst,
            const a_transform<T>* tf = nullptr) {
  if (tf) return pack_a_transformed<MR>(ta, a, lda, *tf, i0, mc, p0, kc, dst);
  for (index_t s = 0; s < mc; s += MR, dst += kc * MR) {
    const index_t rows = std::min(MR, mc - s);
    if (ta == transpose::yes) {
      // op(A)(i, p) = a[p * lda + i]: MR consecutive rows of op(A) are contiguous for each p.
      const T* src = a + p0 * lda + i0 + s;
      for (index_t p = 0; p < kc; ++p, src += lda) {
        T* d = dst + p * MR;
        if (rows == MR) {
          for (index_t r = 0; r < MR; ++r) d[r] = src[r];
        } else {
          for (index_t r = 0; r < rows; ++r) d[r] = src[r];
          for (index_t r = rows; r < MR; ++r) d[r] = T(0);
        }
      }
    } else {
      // op(A)(i, p) = a[i * lda + p]: read each row contiguously, scatter with stride MR (stays in L1).
      for (index_t r = 0; r < rows; ++r) {
        const T* src = a + (i0 + s + r) * lda + p0;
        for (index_t p = 0; p < kc; ++p) dst[p * MR + r] = src[p];
      }
      for (index_t r = rows; r < MR; ++r)
        for (index_t p = 0; p < kc; ++p) dst[p * MR + r] = T(0);
    }
  }
}

// Packs op(B)[p0 .. p0+kc) x [j0 .. j0+nc) as slivers of NR columns: element (p, c) of sliver s goes to
// dst[s * kc * NR + p * NR + c]. Columns past nc are zero.
template <index_t NR, class V, class T>
void pack_b(transpose tb, const T* b, index_t ldb, index_t p0, index_t kc, index_t j0, index_t nc, T* dst) {
  for (index_t s = 0; s < nc; s += NR, dst += kc * NR) {
    const index_t cols = std::min(NR, nc - s);
    if (tb == transpose::no) {
      // op(B)(p, j) = b[p * ldb + j]: NR consecutive columns are contiguous for each p.
      const T* src = b + p0 * ldb + j0 + s;
      for (index_t p = 0; p < kc; ++p, src += ldb) {
        T* d = dst + p * NR;
        if (cols == NR) {
          for (index_t c = 0; c < NR; ++c) d[c] = src[c];
        } else {
          for (index_t c = 0; c < cols; ++c) d[c] = src[c];
          for (index_t c = cols; c < NR; ++c) d[c] = T(0);
        }
      }
    } else {
      // op(B)(p, j) = b[j * ldb + p] (the Y = X W^T case): a transpose. Go through p in chunks of 16 so the
      // NR source rows are read one cache line at a time and the written chunk (16 x NR) stays in L1.
      constexpr index_t chunk = 16;
      const T* src = b + (j0 + s) * ldb + p0;
      index_t p = 0;
      constexpr index_t w = static_cast<index_t>(simd::lanes_v<V>);
      if constexpr (w > 1 && NR % w == 0) {
        // Whole w x w blocks go through registers: w row loads, one in-register transpose, w stores.
        if (cols == NR) {
          const index_t whole = kc / w * w;
          for (index_t g = 0; g < NR; g += w)
            for (p = 0; p < whole; p += w) {
              V r[w];
              for (index_t q = 0; q < w; ++q) r[q] = simd::load_as<V>(src + (g + q) * ldb + p);
              simd::transpose(r);
              for (index_t t = 0; t < w; ++t) simd::store_as<V>(dst + (p + t) * NR + g, r[t]);
            }
        }
      }
      for (; p < kc; p += chunk) {
        const index_t pe = std::min(chunk, kc - p);
        T* d = dst + p * NR;
        for (index_t c = 0; c < cols; ++c) {
          const T* sc = src + c * ldb + p;
          for (index_t q = 0; q < pe; ++q) d[q * NR + c] = sc[q];
        }
        for (index_t c = cols; c < NR; ++c)
          for (index_t q = 0; q < pe; ++q) d[q * NR + c] = T(0);
      }
    }
  }
}

}  // namespace fnn::kernels::detail
