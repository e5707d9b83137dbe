#pragma once
// A per-column affine transform of the GEMM's A operand, applied while A is packed: the stored matrix A (as
// passed to gemm, before op()) is read as
//
//   A'(r, c) = scale[c] * A(r, c) + z_scale[c] * (Z(r, c) - z_center[c]) + offset[c]
//
// with a second matrix Z of the same shape and per-column (of the stored matrix) coefficient arrays. It is the
// batch-norm input gradient, dz = gamma rstd (du - mean(du) - xhat mean(du xhat)), xhat = (z - mean) rstd, of
// a fused dense + batch_norm stage: the backward products then read du and z directly, and dz never exists in
// memory. Z is kept centred (Z - z_center) rather than folding z_center into offset: with large activations
// (batch norm is tested with a 1e6 offset) the folded form would cancel catastrophically.
//
// It is element-wise, so packing transformed slivers keeps the GEMM's results independent of the thread count.
#include "fnn/core/config.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels {

template <class T>
struct a_transform final {
  const T* z = nullptr;
  index_t ldz = 0;
  const T* scale = nullptr;
  const T* z_scale = nullptr;
  const T* z_center = nullptr;
  const T* offset = nullptr;

  // A'(r, c .. c + lanes_v<V> - 1) from a = &A(r, c) and z = &Z(r, c) (V = T or simd::batch<T>).
  template <class V>
  V at(const T* a, const T* zp, index_t c) const {
    const V centred = simd::load_as<V>(zp) - simd::load_as<V>(z_center + c);
    return simd::fma(simd::load_as<V>(scale + c), simd::load_as<V>(a),
                     simd::fma(simd::load_as<V>(z_scale + c), centred, simd::load_as<V>(offset + c)));
  }
};

// The reference twin: out = A' for a rows x cols stored A, as plain loops (tests multiply `out` with the
// reference GEMM).
template <class T>
void a_transform_reference(index_t rows, index_t cols, const T* a, index_t lda, const a_transform<T>& tf, T* out,
                           index_t ldo) {
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c)
      out[r * ldo + c] = tf.scale[c] * a[r * lda + c] + tf.z_scale[c] * (tf.z[r * tf.ldz + c] - tf.z_center[c]) +
                         tf.offset[c];
}

}  // namespace fnn::kernels
