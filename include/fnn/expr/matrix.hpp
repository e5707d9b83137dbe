#pragma once
// The second dimension of the expression vocabulary, for the layers' fused passes: a row-major block of
// rows x cols values with a leading dimension, and per-column vectors (one value per feature) broadcast down
// the rows (and per-row vectors broadcast along the columns). The interior nodes of expr/expr.hpp are the same for both dimensions: a node's index is a
// std::size_t in 1-D and a pos{row, col} in 2-D, and every node passes it through to its leaves.
//
//   auto Z = expr::matrix(z_view);                        // read-only block (const_matrix_view)
//   auto Y = expr::matrix(y_view);                        // assignable block
//   auto scale = expr::per_column(scale_ptr, f), shift = expr::per_column(shift_ptr, f);
//   expr::assign(Y, expr::activation<gelu_fn>(expr::fma(Z, scale, shift)));
//   auto S = expr::per_column(sums_ptr, f);
//   expr::assign(expr::into(S, S + Z));                   // per-column reduction: S[j] += Z(i, j) in row order
//
// Shapes: shape_of(e) gives {rows, cols}; -1 means "broadcast along this dimension" (a per-column vector has
// rows -1, a scalar both), -2 that the operands disagree (reported by the assignment).
#include <cstddef>
#include <tuple>
#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/expr/expr.hpp"

namespace fnn::expr {

// Position of an element (or of the first of a register's consecutive columns) in a 2-D expression.
struct pos final {
  index_t row, col;
};

// rows x cols elements, row r at data + r * ld.
template <class T>
struct matrix_ref final : node_base {
  using value_type = std::remove_const_t<T>;
  T* data;
  index_t rows, cols, ld;

  template <class Env = std::tuple<>>
  value_type at(pos p, const Env& = {}) const noexcept {
    return data[p.row * ld + p.col];
  }
  template <class Env = std::tuple<>>
  simd::batch<value_type> load(pos p, const Env& = {}) const noexcept {
    return simd::load<value_type>(data + p.row * ld + p.col);
  }
  T* address(pos p) const noexcept { return data + p.row * ld + p.col; }
};

template <class T>
matrix_ref<T> matrix(T* data, index_t rows, index_t cols, index_t ld) noexcept {
  return {{}, data, rows, cols, ld};
}
template <class T>
matrix_ref<T> matrix(matrix_view<T> v) noexcept {
  return {{}, v.data(), v.rows(), v.cols(), v.ld()};
}

// One value per column (a per-feature vector: gamma, a mean, a sum), the same for every row. Assigning to it
// is a per-column reduction over the rows (see assign()).
template <class T>
struct column_ref final : node_base {
  using value_type = std::remove_const_t<T>;
  T* data;
  index_t cols;

  template <class Env = std::tuple<>>
  value_type at(pos p, const Env& = {}) const noexcept {
    return data[p.col];
  }
  template <class Env = std::tuple<>>
  simd::batch<value_type> load(pos p, const Env& = {}) const noexcept {
    return simd::load<value_type>(data + p.col);
  }
  T* address(pos p) const noexcept { return data + p.col; }
};

template <class T>
column_ref<T> per_column(T* data, index_t cols) noexcept {
  return {{}, data, cols};
}

// One value per row (a per-sample statistic: a layer norm's mean or rstd), the same for every column. Read-only:
// a per-row reduction is a 1-D expr::sum over the row.
template <class T>
struct row_ref final : node_base {
  using value_type = std::remove_const_t<T>;
  const T* data;
  index_t rows;

  template <class Env = std::tuple<>>
  value_type at(pos p, const Env& = {}) const noexcept {
    return data[p.row];
  }
  template <class Env = std::tuple<>>
  simd::batch<value_type> load(pos p, const Env& = {}) const noexcept {
    return simd::broadcast<value_type>(data[p.row]);
  }
};

template <class T>
row_ref<T> per_row(const T* data, index_t rows) noexcept {
  return {{}, data, rows};
}

// ---- shapes ---------------------------------------------------------------------------------------

struct shape2 final {
  index_t rows, cols;
};

inline shape2 common_shape(shape2 a, shape2 b) noexcept {
  return {detail::common_extent(a.rows, b.rows), detail::common_extent(a.cols, b.cols)};
}

template <class T>
shape2 shape_of(const matrix_ref<T>& m) noexcept {
  return {m.rows, m.cols};
}
template <class T>
shape2 shape_of(const column_ref<T>& c) noexcept {
  return {-1, c.cols};
}
template <class T>
shape2 shape_of(const row_ref<T>& r) noexcept {
  return {r.rows, -1};
}
template <class T>
shape2 shape_of(const scalar_ref<T>&) noexcept {
  return {-1, -1};
}
template <class T>
shape2 shape_of(const array_ref<T>&) noexcept {
  static_assert(sizeof(T) == 0, "fnn: a 1-D array leaf in a 2-D expression (use expr::matrix or expr::per_column)");
  return {-2, -2};
}
template <class Op, class A>
shape2 shape_of(const unary_node<Op, A>& e) noexcept {
  return shape_of(e.a);
}
template <class Op, class A, class B>
shape2 shape_of(const binary_node<Op, A, B>& e) noexcept {
  return common_shape(shape_of(e.a), shape_of(e.b));
}
template <class Op, class A, class B, class C>
shape2 shape_of(const ternary_node<Op, A, B, C>& e) noexcept {
  return common_shape(common_shape(shape_of(e.a), shape_of(e.b)), shape_of(e.c));
}
template <std::size_t K, class E>
shape2 shape_of(const binding<K, E>& e) noexcept {
  return shape_of(e.src);
}

}  // namespace fnn::expr
