#pragma once
// GEMM entry point used by the layers. For now it forwards to the reference loops; the xsimd kernel
// (packing, blocking, micro-kernel, epilogue) replaces the body behind the same signature.
#include "fnn/kernels/gemm_reference.hpp"

namespace fnn::kernels {

template <class T>
void gemm(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const T* a, index_t lda, const T* b,
          index_t ldb, T beta, T* c, index_t ldc) {
  gemm_reference(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace fnn::kernels
