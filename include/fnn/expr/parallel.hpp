#pragma once
// Threads for fnn's passes over memory (and the thread count the GEMM uses). With OpenMP (FNN_HAS_OPENMP, defined
// by the fnn target when OpenMP is found) a pass runs on up to num_threads() threads; without it everything is
// single-threaded.
//
// Results never depend on the thread count: a pass is split into parts that own disjoint output elements, and a
// reduction is never split across threads. Element-wise maps split the rows; per-column reductions split the
// columns into ranges whose bounds are multiples of the SIMD width, so every column takes the same path (vector
// lanes or scalar tail) and is summed by one thread in row order, whatever the number of parts.
#include <algorithm>
#include <atomic>

#include "fnn/core/config.hpp"
#include "fnn/simd/simd.hpp"

#if defined(FNN_HAS_OPENMP)
#include <omp.h>
#endif

namespace fnn {

namespace detail {
// 0 means "not set": follow OpenMP's default (OMP_NUM_THREADS or the number of cores).
inline std::atomic<int> requested_threads{0};
}  // namespace detail

// Sets the number of threads fnn's kernels use; n <= 0 restores the default. Does not change OpenMP's global
// state, so other OpenMP code in the program is unaffected.
inline void set_num_threads(int n) noexcept { detail::requested_threads.store(n > 0 ? n : 0); }

// Number of threads fnn's kernels use (1 without OpenMP).
inline int num_threads() noexcept {
#if defined(FNN_HAS_OPENMP)
  const int n = detail::requested_threads.load();
  return n > 0 ? n : omp_get_max_threads();
#else
  return 1;
#endif
}

namespace expr {

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
// per-column reductions).
template <class T, class Body>
void for_column_ranges(index_t rows, index_t cols, Body&& body) {
  constexpr auto w = static_cast<index_t>(simd::width<T>);
  const index_t groups = (cols + w - 1) / w;
  const int parts = detail::pass_threads(rows, cols, groups);
  auto part = [&](int t) {
    body(std::min(cols, groups * t / parts * w), std::min(cols, groups * (t + 1) / parts * w));
  };
  detail::run_parts(parts, part);
}

}  // namespace expr
}  // namespace fnn
