#pragma once
// Reference GEMM: plain loops, the oracle for kernels/gemm.hpp. Row-major, BLAS conventions:
// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, with op(X) = X or X^T.
#include "fnn/core/config.hpp"

namespace fnn::kernels {

enum class transpose : bool { no = false, yes = true };

template <class T>
void gemm_reference(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda,
                    const T* b, index_t ldb, T beta, T* c, index_t ldc) {
  for (index_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (index_t j = 0; j < n; ++j) ci[j] = beta == T(0) ? T(0) : beta * ci[j];
    for (index_t p = 0; p < k; ++p) {
      const T aip = alpha * (ta == transpose::no ? a[i * lda + p] : a[p * lda + i]);
      if (tb == transpose::no) {
        const T* bp = b + p * ldb;
        for (index_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
      } else {
        for (index_t j = 0; j < n; ++j) ci[j] += aip * b[j * ldb + p];
      }
    }
  }
}

}  // namespace fnn::kernels
