#pragma once
// GEMM used by the layers: row-major, BLAS conventions (the oracle is gemm_reference.hpp),
//
//   C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C,   op(X) = X or X^T,
//
// optionally followed by an epilogue run on each finished tile before/after its store (see epilogue.hpp):
//
//   gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);            // plain
//   gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue);  // fused tail
//   gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue, &tf);  // A read through a_transform tf
//
// Structure (Goto/BLIS): op(B) is packed into kc x nc panels of nr-column slivers, op(A) into mc x kc blocks of
// mr-row slivers (transposes are resolved while packing), and an mr x nr register tile accumulates one sliver
// pair. Sizes are in detail::gemm_config. beta == 0 never reads C. k == 0 or alpha == 0 gives C = beta * C
// (then epilogue), without reading A or B.
//
// Threads (kernels/threads.hpp): each thread owns a rectangle of C aligned to the register tile and runs the
// whole blocked algorithm on it with its own packing buffers (thread_local, grown once and reused), so there is
// no barrier and every element of C is summed in the same order whatever the thread count: results are
// bit-identical for any number of threads.
#include <algorithm>
#include <array>
#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/kernels/a_transform.hpp"
#include "fnn/kernels/detail/gemm_config.hpp"
#include "fnn/kernels/detail/gemm_dot.hpp"
#include "fnn/kernels/detail/gemm_micro.hpp"
#include "fnn/kernels/detail/gemm_pack.hpp"
#include "fnn/kernels/epilogue.hpp"
#include "fnn/kernels/gemm_reference.hpp"
#include "fnn/kernels/threads.hpp"

namespace fnn::kernels {

// Rows of the register tile: reduce() epilogues are called on tiles whose first row is a multiple of this.
template <class T>
inline constexpr index_t gemm_tile_rows = detail::gemm_config<T>::mr;
// Columns of the register tile.
template <class T>
inline constexpr index_t gemm_tile_cols = detail::gemm_config<T>::nr;

namespace detail {

struct gemm_problem {
  transpose ta, tb;
  index_t m, n, k;
};

// The rectangle [m0, m1) x [n0, n1) of C, computed by one thread.
struct gemm_rect {
  index_t m0, m1, n0, n1;
};

template <class T, class Ep>
void gemm_rect_run(const gemm_problem& pr, const gemm_rect& r, const T* a, index_t lda, const T* b, index_t ldb,
                   const store_mode<T>& mode, T* c, index_t ldc, Ep& ep, const a_transform<T>* tf) {
  using cfg = gemm_config<T>;
  using V = typename cfg::vec;
  constexpr index_t mr = cfg::mr, nr = cfg::nr, nv = cfg::nv;
  const index_t k = pr.k, kb = cfg::k_block(k);
  T* apack = thread_scratch_a<T>().get(cfg::mc * kb);
  T* bpack = thread_scratch_b<T>().get(kb *
                                       std::min(cfg::nc, (r.n1 - r.n0 + nr - 1) / nr * nr));
  store_mode<T> first_mode = mode;
  const store_mode<T> accumulate_mode(mode.alpha, T(1));
  for (index_t jc = r.n0; jc < r.n1; jc += cfg::nc) {
    const index_t nc = std::min(cfg::nc, r.n1 - jc);
    // At least one pass, so that k == 0 still scales C by beta and runs the epilogue.
    for (index_t pc = 0; pc == 0 || pc < k; pc += kb) {
      const index_t kc = std::min(kb, k - pc);
      const bool last = pc + kc >= k;
      const store_mode<T>& md = pc == 0 ? first_mode : accumulate_mode;
      pack_b<nr, V>(pr.tb, b, ldb, pc, kc, jc, nc, bpack);
      // One B sliver covers the whole rectangle: each A element is used once, so read A in place (unless A is
      // transformed: the transform happens while packing).
      const bool a_in_place = pr.ta == transpose::no && r.n1 - r.n0 <= nr && !tf;
      for (index_t ic = r.m0; ic < r.m1; ic += cfg::mc) {
        const index_t mc = std::min(cfg::mc, r.m1 - ic);
        if (!a_in_place) pack_a<mr>(pr.ta, a, lda, ic, mc, pc, kc, apack, tf);
        for (index_t jr = 0; jr < nc; jr += nr) {
          const T* bs = bpack + (jr / nr) * kc * nr;
          for (index_t ir = 0; ir < mc; ir += mr) {
            V acc[mr][nv];
            const index_t row = ic + ir, col = jc + jr, rows = std::min(mr, mc - ir), cols = std::min(nr, nc - jr);
            constexpr auto tiles = std::make_integer_sequence<index_t, mr * nv>{};
            if (a_in_place) {
              micro_tile_dispatch<V, mr, nr, false>(tiles, rows, cols, kc, a + row * lda + pc, lda, bs, acc);
            } else {
              micro_tile_dispatch<V, mr, nr, true>(tiles, rows, cols, kc, apack + (ir / mr) * kc * mr, 0, bs, acc);
            }
            store_tile<V, mr, nv>(acc, c + row * ldc + col, ldc, row, col, rows, cols, md, ep, last);
          }
        }
      }
    }
  }
}

// Splits C among `threads` rectangles aligned to the register tile, picking the grid (tm x tn) that minimises
// the largest share of micro-tiles plus the packing each thread repeats (a thread packs all of A for its rows
// and all of B for its columns).
template <class T>
inline int gemm_partition(index_t m, index_t n, index_t k, int threads, std::array<gemm_rect, 64>& out) {
  using cfg = gemm_config<T>;
  const index_t tiles_m = (m + cfg::mr - 1) / cfg::mr, tiles_n = (n + cfg::nr - 1) / cfg::nr;
  threads = std::clamp<int>(threads, 1, 64);
  // Too little work to pay for waking a second thread (~a few microseconds).
  const double flops = 2.0 * double(m) * double(n) * double(k);
  threads = std::min<index_t>(threads, std::max<index_t>(1, index_t(flops / 2.0e6)));
  int best_tm = 1;
  double best_cost = 1e300;
  for (int tm = 1; tm <= threads; ++tm) {
    if (threads % tm != 0) continue;
    const int tn = threads / tm;
    if (tm > tiles_m || tn > tiles_n) continue;
    const index_t share_m = (tiles_m + tm - 1) / tm, share_n = (tiles_n + tn - 1) / tn;
    const double compute = double(share_m * cfg::mr) * double(share_n * cfg::nr) * double(k);
    const double packing = 8.0 * double(k) * double(share_m * cfg::mr + share_n * cfg::nr);
    if (compute + packing < best_cost) best_cost = compute + packing, best_tm = tm;
  }
  if (best_cost == 1e300) threads = 1, best_tm = 1;
  const int tm = best_tm, tn = threads / tm;
  int count = 0;
  for (int im = 0; im < tm; ++im)
    for (int in = 0; in < tn; ++in) {
      // Even split of tiles; the first ones get the remainder.
      const auto bound = [](index_t tiles, int parts, int i) {
        return tiles / parts * i + std::min<index_t>(i, tiles % parts);
      };
      gemm_rect rc{std::min(m, bound(tiles_m, tm, im) * cfg::mr), std::min(m, bound(tiles_m, tm, im + 1) * cfg::mr),
                   std::min(n, bound(tiles_n, tn, in) * cfg::nr), std::min(n, bound(tiles_n, tn, in + 1) * cfg::nr)};
      if (rc.m0 < rc.m1 && rc.n0 < rc.n1) out[static_cast<std::size_t>(count++)] = rc;
    }
  return count;
}

}  // namespace detail

// a_tf (optional, nullptr = none): the product uses A' = a_tf applied to the stored A (see a_transform.hpp),
// computed while packing, so A' is never stored. It costs a pack of A where the plain product reads A in place.
template <class T, class Epilogue>
void gemm(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b,
          index_t ldb, T beta, T* c, index_t ldc, Epilogue&& epilogue,
          const a_transform<std::type_identity_t<T>>* a_tf = nullptr) {
  static_assert(!epilogue_with_reduce<std::remove_cvref_t<Epilogue>, T> ||
                    !std::is_const_v<std::remove_reference_t<Epilogue>>,
                "fnn: an epilogue with reduce() must be passed as a non-const object");
  if (m <= 0 || n <= 0) return;
  if (alpha == T(0)) k = 0;  // BLAS: A and B are not referenced.
  const detail::gemm_problem pr{ta, tb, m, n, std::max<index_t>(k, 0)};
  const detail::store_mode<T> mode(alpha, beta);
  std::array<detail::gemm_rect, 64> rects;
  const int parts = detail::gemm_partition<T>(m, n, pr.k, num_threads(), rects);
  // Y = X W^T with a tiny side: dot products on the unpacked operands (packing would cost more than it saves).
  const bool dots = ta == transpose::no && tb == transpose::yes && pr.k > 0 && m <= detail::dot_ri && !a_tf;
  const auto run = [&](const detail::gemm_rect& r) {
    if (dots) {
      detail::gemm_dot_rect<T>(pr.k, r, a, lda, b, ldb, mode, c, ldc, epilogue);
    } else {
      detail::gemm_rect_run<T>(pr, r, a, lda, b, ldb, mode, c, ldc, epilogue, a_tf);
    }
  };
#if defined(FNN_HAS_OPENMP)
  if (parts > 1) {
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int t = 0; t < parts; ++t) run(rects[static_cast<std::size_t>(t)]);
    return;
  }
#endif
  for (int t = 0; t < parts; ++t) run(rects[static_cast<std::size_t>(t)]);
}

template <class T>
void gemm(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b,
          index_t ldb, T beta, T* c, index_t ldc) {
  no_epilogue none;
  gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, none);
}

}  // namespace fnn::kernels
