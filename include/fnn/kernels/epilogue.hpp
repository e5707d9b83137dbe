#pragma once
// GEMM epilogues: work done on each finished tile of C while it is still in registers / L1, so that the
// element-wise tail of a layer (bias, activation) and the statistics of its output (batch norm) cost no extra
// pass over memory.
//
// An epilogue is any object with one or both of these members (each is detected, both are optional):
//
//   template <class V> V apply(V v, index_t row, index_t col) const;
//       Element-wise transform of finished values. `v` holds C(row, col .. col + lanes_v<V> - 1) after alpha and
//       beta have been applied; the return value is what gets stored. V is simd::batch<T> for the full-width
//       part of a tile and plain T for column tails (and for the scalar build), so write it generically, using
//       simd::load_as<V>(p + col) to read per-column operands. It is called once per element, from several
//       threads at once: it must be const and thread-safe.
//
//   void reduce(const T* tile, index_t ldc, index_t row, index_t rows, index_t col, index_t cols);
//       Called once per finished tile after it was stored: tile[i * ldc + j] is C(row + i, col + j) for
//       i < rows, j < cols (the values apply() returned). `row` is always a multiple of gemm_tile_rows<T>,
//       so `row / gemm_tile_rows<T>` names a fixed slot whatever the thread count; tiles of the same columns
//       may be reported concurrently by different threads, so accumulate per slot (see column_moments) and
//       merge the slots in a fixed order afterwards: that keeps results deterministic and thread-count free.
//
// Both run only once per element, after the last k block (earlier blocks store partial sums).
//
// Example (bias + ReLU, Y = X W^T + b):
//   struct bias_relu {
//     const float* bias;
//     template <class V> V apply(V v, fnn::index_t, fnn::index_t col) const {
//       return fnn::simd::max(v + fnn::simd::load_as<V>(bias + col), V(0));
//     }
//   };
//   fnn::kernels::gemm(transpose::no, transpose::yes, m, n, k, 1.f, x, k, w, k, 0.f, y, n, bias_relu{b});
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "fnn/core/config.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels {

// The epilogue that does nothing (plain GEMM).
struct no_epilogue final {};

template <class E, class V>
concept epilogue_with_apply = requires(const E& e, V v, index_t i) {
  { e.apply(v, i, i) } -> std::convertible_to<V>;
};

template <class E, class T>
concept epilogue_with_reduce = requires(E& e, const T* p, index_t i) { e.reduce(p, i, i, i, i, i); };

// Wraps a generic callable f(v, row, col) -> v as an element-wise epilogue.
template <class F>
struct elementwise final {
  F f;
  template <class V>
  V apply(V v, index_t row, index_t col) const {
    return f(v, row, col);
  }
};
template <class F>
elementwise(F) -> elementwise<F>;

// Combines an element-wise epilogue and a reduction: apply() runs first, reduce() sees its results.
template <class Apply, class Reduce>
struct apply_then_reduce final {
  Apply first;
  Reduce* second;
  template <class V>
  V apply(V v, index_t row, index_t col) const {
    return first.apply(v, row, col);
  }
  template <class T>
  void reduce(const T* tile, index_t ldc, index_t row, index_t rows, index_t col, index_t cols) {
    second->reduce(tile, ldc, row, rows, col, cols);
  }
};

// Per-column mean and variance of the stored GEMM output (the batch statistics of a training-mode batch norm),
// as a reduce() epilogue. Each tile of `tile_rows` rows gives exact per-column (count, mean, M2) partials in its
// own slot (two passes over the tile, which is in L1); finish() merges the slots in row order with Chan et al.'s
// pairwise formula. No float sum of squares is ever formed, and the result does not depend on the thread count.
template <class T>
class column_moments final {
 public:
  column_moments() = default;
  column_moments(index_t rows, index_t cols, index_t tile_rows) { reset(rows, cols, tile_rows); }

  // Prepares for a new product; keeps the storage, so a training loop that reuses the object does not allocate.
  void reset(index_t rows, index_t cols, index_t tile_rows) {
    cols_ = cols;
    tile_rows_ = tile_rows;
    slots_ = (rows + tile_rows - 1) / tile_rows;
    count_.resize(static_cast<std::size_t>(slots_));
    for (index_t s = 0; s < slots_; ++s) count_[static_cast<std::size_t>(s)] = std::min(tile_rows, rows - s * tile_rows);
    mean_.assign(static_cast<std::size_t>(slots_ * cols), T(0));
    m2_.assign(static_cast<std::size_t>(slots_ * cols), T(0));
  }

  void reduce(const T* tile, index_t ldc, index_t row, index_t rows, index_t col, index_t cols) {
    const index_t slot = row / tile_rows_;
    T* mean = mean_.data() + slot * cols_ + col;
    T* m2 = m2_.data() + slot * cols_ + col;
    for (index_t j = 0; j < cols; ++j) mean[j] = T(0);
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) mean[j] += tile[i * ldc + j];
    const T inv = T(1) / static_cast<T>(rows);
    for (index_t j = 0; j < cols; ++j) mean[j] *= inv;
    for (index_t j = 0; j < cols; ++j) m2[j] = T(0);
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        const T d = tile[i * ldc + j] - mean[j];
        m2[j] += d * d;
      }
  }

  // Merges the slots: mean[j] and the biased variance var[j] (divided by the row count) of column j.
  void finish(T* mean, T* var) const {
    for (index_t j = 0; j < cols_; ++j) {
      T n = 0, mu = 0, m2 = 0;
      for (index_t s = 0; s < slots_; ++s) {
        const T nb = static_cast<T>(count_[static_cast<std::size_t>(s)]);
        if (nb == T(0)) continue;
        const T mb = mean_[static_cast<std::size_t>(s * cols_ + j)];
        const T n_ab = n + nb;
        const T delta = mb - mu;
        mu += delta * (nb / n_ab);
        m2 += m2_[static_cast<std::size_t>(s * cols_ + j)] + delta * delta * (n * nb / n_ab);
        n = n_ab;
      }
      mean[j] = mu;
      var[j] = n > T(0) ? m2 / n : T(0);
    }
  }

 private:
  index_t cols_ = 0, tile_rows_ = 1, slots_ = 0;
  std::vector<index_t> count_;
  std::vector<T> mean_, m2_;
};

}  // namespace fnn::kernels
