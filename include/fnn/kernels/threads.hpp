#pragma once
// Thread count used by fnn's kernels. With OpenMP (FNN_HAS_OPENMP, defined by the fnn target when OpenMP is
// found) kernels run on up to num_threads() threads; without it everything is single-threaded.
//
// Results are deterministic for a given thread count: kernels partition output elements among threads and
// never split one reduction across threads (the GEMM even gives the same bits for every thread count).
#include <atomic>

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

}  // namespace fnn
