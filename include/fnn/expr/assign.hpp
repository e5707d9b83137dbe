#pragma once
// The one evaluation loop of fnn (the "evaluator" role of DESIGN.md). Every element-wise assignment
// and reduction goes through `detail::for_each_block`: a vector body with unaligned loads, then a
// scalar tail, so unaligned spans and any length work, and FNN_FORCE_SCALAR runs the same trees on the
// scalar path.
//
//   expr::assign(p, p - lr * g);                        // one output
//   expr::assign(expr::into(m, m_new),                  // several outputs, ONE loop: every right-hand
//                expr::into(v, v_new),                  // side is evaluated from the old values (in
//                expr::into(p, p - lr * m_new / ...));  // registers) before any output is stored
//   T s = expr::sum(g * g);                             // reductions use the same loop
//
// Element i of an output may alias element i of any input (in-place updates); outputs must not
// overlap each other at different offsets.
//
// 2-D (expr/matrix.hpp) runs through the same evaluation of items, over rows x columns:
//   expr::assign(expr::into(Y, expr::activation<Fn>(fma(Z, scale, shift))));   // a map, rows split over threads
//   expr::assign(d, expr::into(DU, d), expr::into(S, S + d));                // a store and a per-column sum
//   expr::column_mean_variance(Z, mean, var);                                 // batch statistics, two passes
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>

#include "fnn/core/errors.hpp"
#include "fnn/expr/expr.hpp"
#include "fnn/expr/matrix.hpp"
#include "fnn/expr/parallel.hpp"

// GCC 12 reports the _mm512_undefined_* placeholders inside its own AVX-512 intrinsics (sqrt, max,
// min, ...) as maybe-uninitialized once they are inlined into our loops; a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace fnn::expr {

// A destination (array_ref, matrix_ref or column_ref) paired with the expression to store into it.
template <class D, class E>
struct assignment {
  D dst;
  E src;
};

template <class D>
concept destination = requires(const D& d) { *d.address({}) = typename D::value_type{}; };

template <destination D, expression E>
assignment<D, E> into(D dst, const E& src) noexcept {
  return {dst, src};
}
template <destination D, class S>
  requires std::is_arithmetic_v<S>
assignment<D, scalar_ref<typename D::value_type>> into(D dst, S value) noexcept {
  return {dst, scalar(static_cast<typename D::value_type>(value))};
}

namespace detail {

// Runs body(i, vector_tag) for each full register and body(i, scalar_tag) for the tail.
struct vector_tag {};
struct scalar_tag {};

template <class T, class Body>
[[gnu::always_inline]] inline void for_each_block(std::size_t n, Body&& body) {
  std::size_t i = 0;
  if constexpr (simd::enabled) {
    constexpr std::size_t w = simd::width<T>;
    for (; i + w <= n; i += w) body(i, vector_tag{});
  }
  for (; i < n; ++i) body(i, scalar_tag{});
}

inline void check_extent(index_t expected, index_t got, std::size_t which) {
  if (got == -2)
    throw shape_error("expression #" + std::to_string(which) + " combines arrays of different sizes");
  if (got >= 0 && got != expected)
    throw shape_error("assignment #" + std::to_string(which) + " to an array of " + std::to_string(expected) +
                      " elements from an expression of " + std::to_string(got));
}

template <class E, class I, class Env>
inline auto eval(const E& e, const I& i, const Env& env, vector_tag) noexcept {
  return e.load(i, env);
}
template <class E, class I, class Env>
inline auto eval(const E& e, const I& i, const Env& env, scalar_tag) noexcept {
  return e.at(i, env);
}

template <class X>
inline constexpr bool is_binding = false;
template <std::size_t K, class E>
inline constexpr bool is_binding<binding<K, E>> = true;

// Evaluates the arguments in order. A binding's value joins env (visible to everything after it); an
// assignment's value is returned, in order, for the stores that follow.
template <class Tag, class I, class Env>
inline std::tuple<> eval_all(const I&, const Env&, Tag) noexcept {
  return {};
}
template <class Tag, class I, class Env, class A, class... Rest>
inline auto eval_all(const I& i, const Env& env, Tag tag, const A& a, const Rest&... rest) noexcept {
  if constexpr (is_binding<A>) {
    static_assert(A::index == std::tuple_size_v<Env>, "fnn: let<K> bindings must be numbered 0, 1, ... in order");
    const auto grown = std::tuple_cat(env, std::tuple{eval(a.src, i, env, tag)});
    return eval_all(i, grown, tag, rest...);
  } else {
    const auto value = eval(a.src, i, env, tag);
    return std::tuple_cat(std::tuple{value}, eval_all(i, env, tag, rest...));
  }
}

template <class Tag, class I, class... Values, class A, class... Rest>
inline void store_all(const I& i, Tag tag, const std::tuple<Values...>& values, const A& a, const Rest&... rest) {
  if constexpr (is_binding<A>) {
    store_all(i, tag, values, rest...);
  } else {
    auto dst = a.dst.address(i);
    if constexpr (std::is_same_v<Tag, vector_tag>) simd::store(dst, std::get<0>(values));
    else *dst = std::get<0>(values);
    if constexpr (sizeof...(Rest) > 0)
      store_all(i, tag, std::apply([](const auto&, const auto&... tail) { return std::tuple{tail...}; }, values),
                rest...);
  }
}
template <class Tag, class I, class... Values>
inline void store_all(const I&, Tag, const std::tuple<Values...>&) {}

template <class A>
inline index_t dst_extent(const A& a, index_t n) noexcept {
  if constexpr (is_binding<A>) return n;
  else return static_cast<index_t>(a.dst.size);
}
template <class A>
inline std::size_t first_dst_size(const A& a) noexcept {
  if constexpr (is_binding<A>) return 0;
  else return a.dst.size;
}

}  // namespace detail

namespace detail {

template <class A>
inline constexpr bool is_2d = false;
template <class T, class E>
inline constexpr bool is_2d<assignment<matrix_ref<T>, E>> = true;
template <class T, class E>
inline constexpr bool is_2d<assignment<column_ref<T>, E>> = true;
// A per-column destination: the assignment reduces over the rows.
template <class A>
inline constexpr bool is_column_reduction = false;
template <class T, class E>
inline constexpr bool is_column_reduction<assignment<column_ref<T>, E>> = true;

template <class A>
inline shape2 dst_shape(const A& a) noexcept {
  if constexpr (is_binding<A>) return {-1, -1};
  else return shape_of(a.dst);
}

// Rows [i0, i1) x columns [j0, j1) of every item, row by row; along a row the vector body, then the scalar tail.
// j0 is 0 or a multiple of the SIMD width, so a column takes the same path whatever range it is part of.
template <class T, class... Items>
[[gnu::always_inline]] inline void assign_block(index_t i0, index_t i1, index_t j0, index_t j1, Items... items) {
  // The trees are copies this loop owns (as in 1-D), so the compiler knows the stores do not change them.
  const auto element = [items...](pos p, auto tag) {
    const auto values = eval_all(p, std::tuple<>{}, tag, items...);
    store_all(p, tag, values, items...);
  };
  for (index_t i = i0; i < i1; ++i) {
    if constexpr (simd::enabled) {
      constexpr auto w = static_cast<index_t>(simd::width<T>);
      const index_t full = j0 + (j1 - j0) / w * w;
      for (index_t j = j0; j < full; j += w) element(pos{i, j}, vector_tag{});
      // The tail is shorter than a register; saying so keeps GCC from reasoning about (and warning on,
      // -Waggressive-loop-optimizations) absurd trip counts of a loop it would otherwise vectorize.
      const int tail = static_cast<int>(j1 - full);
      for (int t = 0; t < tail && t < static_cast<int>(w); ++t) element(pos{i, full + t}, scalar_tag{});
    } else {
      for (index_t j = j0; j < j1; ++j) element(pos{i, j}, scalar_tag{});
    }
  }
}

inline std::string shape_text(shape2 s) {
  const auto one = [](index_t n) {
    return n == -1 ? std::string("any") : n == -2 ? std::string("mixed") : std::to_string(n);
  };
  return one(s.rows) + " x " + one(s.cols);
}

template <class First, class... Rest>
struct first_value_of {
  using type = value_t<decltype(std::declval<const First&>().src)>;
};

template <class... Items>
void assign_2d(const Items&... items) {
  shape2 s{-1, -1};
  ((s = common_shape(common_shape(s, dst_shape(items)), shape_of(items.src))), ...);
  if (s.rows < 0 || s.cols < 0) {
    std::string shapes;
    ((shapes += " [" + shape_text(dst_shape(items)) + " <- " + shape_text(shape_of(items.src)) + "]"), ...);
    throw shape_error((s.rows == -2 || s.cols == -2
                           ? "2-D assignment over operands of different shapes (rows x cols, destination <- "
                             "expression):"
                           : "2-D assignment without a matrix operand fixing its rows and columns:") +
                      shapes);
  }
  using T = typename first_value_of<Items...>::type;
  // Maps split the rows; a per-column destination is updated by one thread per column, in row order, so the
  // columns are split (at multiples of the SIMD width) and the result does not depend on the thread count.
  if constexpr ((is_column_reduction<Items> || ...)) {
    for_column_ranges<T>(s.rows, s.cols,
                         [&](index_t j0, index_t j1) { assign_block<T>(0, s.rows, j0, j1, items...); });
  } else {
    for_row_ranges(s.rows, s.cols, [&](index_t i0, index_t i1) { assign_block<T>(i0, i1, 0, s.cols, items...); });
  }
}

}  // namespace detail

namespace detail {
template <class First, class... Rest>
[[gnu::always_inline]] inline void assign_1d(const First& first, const Rest&... rest) {
  std::size_t n = detail::first_dst_size(first);
  ((n = n ? n : detail::first_dst_size(rest)), ...);
  {
    std::size_t k = 0;
    const auto check = [&](const auto& a) {
      detail::check_extent(static_cast<index_t>(n), detail::dst_extent(a, static_cast<index_t>(n)), k);
      detail::check_extent(static_cast<index_t>(n), a.src.extent(), k);
      ++k;
    };
    check(first);
    (check(rest), ...);
  }
  using T = value_t<decltype(first.src)>;
  // The trees are captured by value (a copy the loop owns, so the stores cannot alias them); shared
  // values are reused through let<K> bindings.
  detail::for_each_block<T>(n, [first, rest...](std::size_t i, auto tag) {
    // Every right-hand side is evaluated (old values, in registers) before the first store.
    const auto values = detail::eval_all(i, std::tuple<>{}, tag, first, rest...);
    detail::store_all(i, tag, values, first, rest...);
  });
}
}  // namespace detail

// Evaluates every (destination, expression) pair in one loop. All destinations must have the same
// size; the expressions must have that size or be broadcast scalars. let<K> bindings may come first.
//
// 2-D (destinations matrix_ref or column_ref): one loop over rows x columns, every item evaluated at each
// element before any store, as in 1-D. A column_ref destination is a per-column reduction: its right-hand side
// reads the old value, e.g. into(S, S + X) sums X's rows into S. Large passes run on several threads (rows
// split for maps, SIMD-aligned column ranges when there is a reduction) with the same bits for any count.
template <class First, class... Rest>
  requires(detail::is_binding<First> || requires(const First& f) { f.dst; })
[[gnu::always_inline]] inline void assign(const First& first, const Rest&... rest) {
  if constexpr (detail::is_2d<First> || (detail::is_2d<Rest> || ...)) {
    static_assert(((detail::is_2d<First> || detail::is_binding<First>) && ... &&
                   (detail::is_2d<Rest> || detail::is_binding<Rest>)),
                  "fnn: one assign() mixes 1-D (array) and 2-D (matrix, per_column) destinations");
    detail::assign_2d(first, rest...);
  } else {
    detail::assign_1d(first, rest...);
  }
}

// Single assignment: dst = src.
template <class T, class S>
  requires(!std::is_const_v<T> && (expression<S> || std::is_arithmetic_v<S>))
void assign(array_ref<T> dst, const S& src) {
  assign(into(dst, src));
}
template <class T, class S>
  requires(!std::is_const_v<T> && (expression<S> || std::is_arithmetic_v<S>))
void assign(matrix_ref<T> dst, const S& src) {
  assign(into(dst, src));
}

// Per-column mean and biased variance (divided by the row count) of a 2-D expression x, in two passes over x:
// the column sums, then the sums of squared deviations from the mean (numerically safe: never a float sum of
// squares). Each column is reduced by one thread in row order, so the bits do not depend on the thread count.
template <expression E, class T>
  requires std::is_same_v<value_t<E>, T>
void column_mean_variance(const E& x, T* mean, T* var) {
  const shape2 s = shape_of(x);
  if (s.rows <= 0 || s.cols < 0)
    throw shape_error("column_mean_variance over an expression of shape " + detail::shape_text(s) +
                      " (it needs a matrix operand and at least one row)");
  for (index_t j = 0; j < s.cols; ++j) mean[j] = var[j] = T(0);
  const auto m = per_column(mean, s.cols), v = per_column(var, s.cols);
  assign(into(m, m + x));
  const T inv_n = T(1) / static_cast<T>(s.rows);
  for (index_t j = 0; j < s.cols; ++j) mean[j] *= inv_n;
  const auto d = let<0>(x - per_column(static_cast<const T*>(mean), s.cols));
  assign(d, into(v, fma(d, d, v)));
  for (index_t j = 0; j < s.cols; ++j) var[j] /= static_cast<T>(s.rows);
}

// Sum of all elements of e (e must not be a bare scalar). Accumulates in four registers to hide
// the add latency; the order of additions differs from a sequential loop.
template <expression E>
value_t<E> sum(const E& e) {
  using T = value_t<E>;
  const index_t n = e.extent();
  if (n == -2) throw shape_error("sum over an expression that combines arrays of different sizes");
  if (n < 0) throw shape_error("sum over an expression without an array");
  const auto size = static_cast<std::size_t>(n);
  std::size_t i = 0;
  T total = T(0);
  if constexpr (simd::enabled) {
    constexpr std::size_t w = simd::width<T>;
    simd::batch<T> acc0(T(0)), acc1(T(0)), acc2(T(0)), acc3(T(0));
    for (; i + 4 * w <= size; i += 4 * w) {
      acc0 += e.load(i);
      acc1 += e.load(i + w);
      acc2 += e.load(i + 2 * w);
      acc3 += e.load(i + 3 * w);
    }
    for (; i + w <= size; i += w) acc0 += e.load(i);
    total = xsimd::hadd((acc0 + acc1) + (acc2 + acc3));
  } else {
    T acc[4] = {T(0), T(0), T(0), T(0)};
    for (; i + 4 <= size; i += 4) {
      acc[0] += e.at(i);
      acc[1] += e.at(i + 1);
      acc[2] += e.at(i + 2);
      acc[3] += e.at(i + 3);
    }
    total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }
  for (; i < size; ++i) total += e.at(i);
  return total;
}

}  // namespace fnn::expr

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
