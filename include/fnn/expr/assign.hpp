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
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>

#include "fnn/core/errors.hpp"
#include "fnn/expr/expr.hpp"

// GCC 12 reports the _mm512_undefined_* placeholders inside its own AVX-512 intrinsics (sqrt, max,
// min, ...) as maybe-uninitialized once they are inlined into our loops; a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace fnn::expr {

// A destination paired with the expression to store into it.
template <class T, class E>
struct assignment {
  array_ref<T> dst;
  E src;
};

template <class T, expression E>
  requires(!std::is_const_v<T>)
assignment<T, E> into(array_ref<T> dst, const E& src) noexcept {
  return {dst, src};
}
template <class T, class S>
  requires(!std::is_const_v<T> && std::is_arithmetic_v<S>)
assignment<T, scalar_ref<T>> into(array_ref<T> dst, S value) noexcept {
  return {dst, scalar(static_cast<T>(value))};
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

template <class E, class Env>
inline auto eval(const E& e, std::size_t i, const Env& env, vector_tag) noexcept {
  return e.load(i, env);
}
template <class E, class Env>
inline auto eval(const E& e, std::size_t i, const Env& env, scalar_tag) noexcept {
  return e.at(i, env);
}

template <class X>
inline constexpr bool is_binding = false;
template <std::size_t K, class E>
inline constexpr bool is_binding<binding<K, E>> = true;

// Evaluates the arguments in order. A binding's value joins env (visible to everything after it); an
// assignment's value is returned, in order, for the stores that follow.
template <class Tag, class Env>
inline std::tuple<> eval_all(std::size_t, const Env&, Tag) noexcept {
  return {};
}
template <class Tag, class Env, class A, class... Rest>
inline auto eval_all(std::size_t i, const Env& env, Tag tag, const A& a, const Rest&... rest) noexcept {
  if constexpr (is_binding<A>) {
    static_assert(A::index == std::tuple_size_v<Env>, "fnn: let<K> bindings must be numbered 0, 1, ... in order");
    const auto grown = std::tuple_cat(env, std::tuple{eval(a.src, i, env, tag)});
    return eval_all(i, grown, tag, rest...);
  } else {
    const auto value = eval(a.src, i, env, tag);
    return std::tuple_cat(std::tuple{value}, eval_all(i, env, tag, rest...));
  }
}

template <class Tag, class... Values, class A, class... Rest>
inline void store_all(std::size_t i, Tag tag, const std::tuple<Values...>& values, const A& a, const Rest&... rest) {
  if constexpr (is_binding<A>) {
    store_all(i, tag, values, rest...);
  } else {
    auto dst = a.dst.data + i;
    if constexpr (std::is_same_v<Tag, vector_tag>) simd::store(dst, std::get<0>(values));
    else *dst = std::get<0>(values);
    if constexpr (sizeof...(Rest) > 0)
      store_all(i, tag, std::apply([](const auto&, const auto&... tail) { return std::tuple{tail...}; }, values),
                rest...);
  }
}
template <class Tag, class... Values>
inline void store_all(std::size_t, Tag, const std::tuple<Values...>&) {}

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

// Evaluates every (destination, expression) pair in one loop. All destinations must have the same
// size; the expressions must have that size or be broadcast scalars. let<K> bindings may come first.
template <class First, class... Rest>
  requires(detail::is_binding<First> || requires(const First& f) { f.dst; })
[[gnu::always_inline]] inline void assign(const First& first, const Rest&... rest) {
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

// Single assignment: dst = src.
template <class T, class S>
  requires(!std::is_const_v<T> && (expression<S> || std::is_arithmetic_v<S>))
void assign(array_ref<T> dst, const S& src) {
  assign(into(dst, src));
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
