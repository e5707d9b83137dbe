#pragma once
// Lazy element-wise expressions (the "elementwise node" role of DESIGN.md, as Eigen's expression
// nodes or xtensor's xfunction). Building `a * b + c` only records a tree of small functors; nothing
// runs until the tree is given to the one evaluation loop in expr/assign.hpp.
//
// Every node has
//   value_type         the element type (all leaves of a tree share it),
//   at(i, env)         the scalar value of element i (i: a std::size_t in 1-D, an expr::pos{row, col} in 2-D,
//                      see expr/matrix.hpp; interior nodes pass it through to their leaves),
//   load(i, env)       the simd::batch<T> holding elements [i, i + width<T>) (unaligned),
//                      env: the values of the let<K> bindings already evaluated for this block,
//   extent()           the number of elements, or -1 for a broadcast scalar.
// Comparison nodes (lt, gt, ...) return bool / batch_bool and only feed `where`.
//
//   auto m = expr::array(m_span);                  // read/write leaf over a span
//   auto g = expr::array(std::as_const(grad));     // read-only leaf
//   expr::assign(m, 0.9f * m + 0.1f * g);          // one loop, vector body + scalar tail
#include <cmath>
#include <cstddef>
#include <span>
#include <tuple>
#include <type_traits>
#include <vector>

#include "fnn/core/config.hpp"
#include "fnn/simd/math.hpp"
#include "fnn/simd/simd.hpp"

// GCC 12 reports the _mm512_undefined_* placeholders inside its own AVX-512 intrinsics (sqrt, max,
// min, ...) as maybe-uninitialized once they are inlined into our loops; a known false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace fnn::expr {

// Tag every node derives from; the operators below are only found for such types.
struct node_base {};

template <class E>
concept expression = std::is_base_of_v<node_base, std::remove_cvref_t<E>>;

template <class E>
using value_t = typename std::remove_cvref_t<E>::value_type;

// ---- leaves ---------------------------------------------------------------------------------------

// A contiguous array. `array(span<T>)` can be assigned to; `array(span<const T>)` can only be read.
template <class T>
struct array_ref final : node_base {
  using value_type = std::remove_const_t<T>;
  T* data;
  std::size_t size;

  template <class Env = std::tuple<>>
  value_type at(std::size_t i, const Env& = {}) const noexcept {
    return data[i];
  }
  template <class Env = std::tuple<>>
  simd::batch<value_type> load(std::size_t i, const Env& = {}) const noexcept {
    return simd::load<value_type>(data + i);
  }
  index_t extent() const noexcept { return static_cast<index_t>(size); }
  T* address(std::size_t i) const noexcept { return data + i; }
};

template <class T>
array_ref<T> array(std::span<T> s) noexcept {
  return {{}, s.data(), s.size()};
}
template <class T, class A>
array_ref<T> array(std::vector<T, A>& v) noexcept {
  return {{}, v.data(), v.size()};
}
template <class T, class A>
array_ref<const T> array(const std::vector<T, A>& v) noexcept {
  return {{}, v.data(), v.size()};
}

// A scalar broadcast to every element.
template <class T>
struct scalar_ref final : node_base {
  using value_type = T;
  T value;

  template <class I, class Env = std::tuple<>>
  T at(const I&, const Env& = {}) const noexcept {
    return value;
  }
  template <class I, class Env = std::tuple<>>
  simd::batch<T> load(const I&, const Env& = {}) const noexcept {
    return simd::broadcast(value);
  }
  static constexpr index_t extent() noexcept { return -1; }
};

template <class T>
scalar_ref<T> scalar(T v) noexcept {
  return {{}, v};
}

// ---- interior nodes -------------------------------------------------------------------------------

namespace detail {
inline index_t common_extent(index_t a, index_t b) noexcept {
  // -1 (broadcast) yields to any size; two different sizes are reported by the assignment as -2.
  if (a < 0) return a == -2 ? -2 : b;
  if (b < 0) return b == -2 ? -2 : a;
  return a == b ? a : -2;
}
}  // namespace detail

template <class Op, class A>
struct unary_node final : node_base {
  using value_type = value_t<A>;
  Op op;
  A a;

  template <class I, class Env = std::tuple<>>
  auto at(const I& i, const Env& env = {}) const noexcept {
    return op(a.at(i, env));
  }
  template <class I, class Env = std::tuple<>>
  auto load(const I& i, const Env& env = {}) const noexcept {
    return op(a.load(i, env));
  }
  index_t extent() const noexcept { return a.extent(); }
};

template <class Op, class A, class B>
struct binary_node final : node_base {
  using value_type = value_t<A>;
  static_assert(std::is_same_v<value_t<A>, value_t<B>>, "fnn: mixed element types in one expression");
  Op op;
  A a;
  B b;

  template <class I, class Env = std::tuple<>>
  auto at(const I& i, const Env& env = {}) const noexcept {
    return op(a.at(i, env), b.at(i, env));
  }
  template <class I, class Env = std::tuple<>>
  auto load(const I& i, const Env& env = {}) const noexcept {
    return op(a.load(i, env), b.load(i, env));
  }
  index_t extent() const noexcept { return detail::common_extent(a.extent(), b.extent()); }
};

template <class Op, class A, class B, class C>
struct ternary_node final : node_base {
  using value_type = value_t<A>;
  static_assert(std::is_same_v<value_t<A>, value_t<B>> && std::is_same_v<value_t<A>, value_t<C>>,
                "fnn: mixed element types in one expression");
  Op op;
  A a;
  B b;
  C c;

  template <class I, class Env = std::tuple<>>
  auto at(const I& i, const Env& env = {}) const noexcept {
    return op(a.at(i, env), b.at(i, env), c.at(i, env));
  }
  template <class I, class Env = std::tuple<>>
  auto load(const I& i, const Env& env = {}) const noexcept {
    return op(a.load(i, env), b.load(i, env), c.load(i, env));
  }
  index_t extent() const noexcept {
    return detail::common_extent(detail::common_extent(a.extent(), b.extent()), c.extent());
  }
};

// ---- functors: one body for scalars and batches where the spelling is the same -----------------

namespace ops {
template <class V>
inline constexpr bool is_scalar_v = std::is_arithmetic_v<V> || std::is_same_v<V, bool>;

struct plus { template <class V> V operator()(const V& a, const V& b) const noexcept { return a + b; } };
struct minus { template <class V> V operator()(const V& a, const V& b) const noexcept { return a - b; } };
struct multiplies { template <class V> V operator()(const V& a, const V& b) const noexcept { return a * b; } };
struct divides { template <class V> V operator()(const V& a, const V& b) const noexcept { return a / b; } };
struct negate { template <class V> V operator()(const V& a) const noexcept { return -a; } };

struct sqrt_fn {
  template <class V>
  V operator()(const V& a) const noexcept {
    if constexpr (is_scalar_v<V>) return std::sqrt(a);
    else return xsimd::sqrt(a);
  }
};
struct abs_fn {
  template <class V>
  V operator()(const V& a) const noexcept {
    if constexpr (is_scalar_v<V>) return std::abs(a);
    else return xsimd::abs(a);
  }
};
// max/min: like torch.maximum/minimum for ordinary numbers. With a NaN they return b, the second operand, in
// every path (that is what the x86 max/min instructions do; NEON's return NaN): put the value whose NaN must
// propagate second. The scalar forms are written to match, so a loop's tail agrees with its vector body.
struct max_fn {
  template <class V>
  V operator()(const V& a, const V& b) const noexcept {
    if constexpr (is_scalar_v<V>) return a > b ? a : b;
    else return xsimd::max(a, b);
  }
};
struct min_fn {
  template <class V>
  V operator()(const V& a, const V& b) const noexcept {
    if constexpr (is_scalar_v<V>) return a < b ? a : b;
    else return xsimd::min(a, b);
  }
};
// sign(0) == 0, as torch.sign: the L1 subgradient that leaves exact zeros alone.
struct sign_fn {
  template <class V>
  V operator()(const V& a) const noexcept {
    if constexpr (is_scalar_v<V>) {
      return static_cast<V>((V(0) < a) - (a < V(0)));
    } else {
      using T = typename V::value_type;
      const V zero(T(0));
      return xsimd::select(a > zero, V(T(1)), xsimd::select(a < zero, V(T(-1)), zero));
    }
  }
};
// a * b + c, one rounding where the target has FMA and two where it has not, in the vector body and the
// scalar tail alike (simd::fma; std::fma would round once in the tail while the lanes round twice).
struct fma_fn {
  template <class V>
  V operator()(const V& a, const V& b, const V& c) const noexcept {
    return simd::fma(a, b, c);
  }
};
// torch.clamp: min(max(x, lo), hi), and a NaN x stays NaN (an optimizer must not turn a NaN gradient into
// +-clip_value, or into -inf with clipping off): x goes second, at no cost.
struct clamp_fn {
  template <class V>
  V operator()(const V& x, const V& lo, const V& hi) const noexcept {
    return min_fn{}(hi, max_fn{}(lo, x));
  }
};
// An activation functor of layers/activations.hpp (static f(V) and df(V, V), V = T or a batch): its value and,
// through simd::activation_gradient, dL/dx from (x, y = f(x), dy).
template <class Fn>
struct activation_fn {
  template <class V>
  V operator()(const V& x) const noexcept {
    return Fn::f(x);
  }
};
template <class Fn>
struct activation_gradient_fn {
  template <class V>
  V operator()(const V& x, const V& y, const V& dy) const noexcept {
    return simd::activation_gradient<Fn>(x, y, dy);
  }
};
struct less { template <class V> auto operator()(const V& a, const V& b) const noexcept { return a < b; } };
struct greater { template <class V> auto operator()(const V& a, const V& b) const noexcept { return a > b; } };
struct less_equal { template <class V> auto operator()(const V& a, const V& b) const noexcept { return a <= b; } };
struct greater_equal { template <class V> auto operator()(const V& a, const V& b) const noexcept { return a >= b; } };
struct select_fn {
  template <class M, class V>
  V operator()(const M& m, const V& a, const V& b) const noexcept {
    if constexpr (is_scalar_v<V>) return m ? a : b;
    else return xsimd::select(m, a, b);
  }
};
}  // namespace ops

// ---- building trees -------------------------------------------------------------------------------

namespace detail {
// Leaves are stored by value (they are a pointer and a size); a bare number becomes a scalar_ref of
// the other operand's element type.
template <class T, class X>
auto as_node(const X& x) noexcept {
  if constexpr (expression<X>) return x;
  else return scalar_ref<T>{{}, static_cast<T>(x)};
}

// The element type of the first operand that is a node (numbers adopt it).
template <class X, class... Rest>
constexpr auto first_value() noexcept {
  if constexpr (expression<X>) return std::type_identity<value_t<X>>{};
  else return first_value<Rest...>();
}
template <class... X>
using first_value_t = typename decltype(first_value<X...>())::type;
}  // namespace detail

// An operand: a node or a plain number (converted to the tree's element type).
template <class X>
concept operand = expression<X> || std::is_arithmetic_v<std::remove_cvref_t<X>>;

template <class... X>
concept has_expression = (expression<X> || ...);

template <class Op, class A>
auto make_node(const A& a) noexcept {
  return unary_node<Op, A>{{}, Op{}, a};
}
template <class Op, class A, class B>
  requires has_expression<A, B>
auto make_node(const A& a, const B& b) noexcept {
  using T = detail::first_value_t<A, B>;
  auto na = detail::as_node<T>(a);
  auto nb = detail::as_node<T>(b);
  return binary_node<Op, decltype(na), decltype(nb)>{{}, Op{}, na, nb};
}
template <class Op, class A, class B, class C>
  requires has_expression<A, B, C>
auto make_node(const A& a, const B& b, const C& c) noexcept {
  using T = detail::first_value_t<A, B, C>;
  auto na = detail::as_node<T>(a);
  auto nb = detail::as_node<T>(b);
  auto nc = detail::as_node<T>(c);
  return ternary_node<Op, decltype(na), decltype(nb), decltype(nc)>{{}, Op{}, na, nb, nc};
}

template <operand A, operand B>
  requires has_expression<A, B>
auto operator+(const A& a, const B& b) noexcept {
  return make_node<ops::plus>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto operator-(const A& a, const B& b) noexcept {
  return make_node<ops::minus>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto operator*(const A& a, const B& b) noexcept {
  return make_node<ops::multiplies>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto operator/(const A& a, const B& b) noexcept {
  return make_node<ops::divides>(a, b);
}
template <expression A>
auto operator-(const A& a) noexcept {
  return make_node<ops::negate>(a);
}

template <expression A>
auto sqrt(const A& a) noexcept {
  return make_node<ops::sqrt_fn>(a);
}
template <expression A>
auto abs(const A& a) noexcept {
  return make_node<ops::abs_fn>(a);
}
template <expression A>
auto sign(const A& a) noexcept {
  return make_node<ops::sign_fn>(a);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto max(const A& a, const B& b) noexcept {
  return make_node<ops::max_fn>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto min(const A& a, const B& b) noexcept {
  return make_node<ops::min_fn>(a, b);
}
// a * b + c with one rounding where the target has FMA.
template <operand A, operand B, operand C>
  requires has_expression<A, B, C>
auto fma(const A& a, const B& b, const C& c) noexcept {
  return make_node<ops::fma_fn>(a, b, c);
}
// Fn(x) for an activation functor Fn, e.g. expr::activation<act::gelu_fn>(fma(z, scale, shift)).
template <class Fn, expression A>
auto activation(const A& x) noexcept {
  return make_node<ops::activation_fn<Fn>>(x);
}
// dL/dx of Fn from x, y = Fn(x) and dy (a select where the functor defines grad, else dy * Fn'(x, y)).
template <class Fn, expression X, expression Y, expression D>
auto activation_gradient(const X& x, const Y& y, const D& dy) noexcept {
  return make_node<ops::activation_gradient_fn<Fn>>(x, y, dy);
}
template <operand X, operand L, operand H>
  requires has_expression<X, L, H>
auto clamp(const X& x, const L& lo, const H& hi) noexcept {
  return make_node<ops::clamp_fn>(x, lo, hi);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto lt(const A& a, const B& b) noexcept {
  return make_node<ops::less>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto gt(const A& a, const B& b) noexcept {
  return make_node<ops::greater>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto le(const A& a, const B& b) noexcept {
  return make_node<ops::less_equal>(a, b);
}
template <operand A, operand B>
  requires has_expression<A, B>
auto ge(const A& a, const B& b) noexcept {
  return make_node<ops::greater_equal>(a, b);
}
// Element-wise `cond ? a : b`; cond is a comparison node (lt, gt, le, ge).
template <expression M, operand A, operand B>
auto where(const M& cond, const A& a, const B& b) noexcept {
  using T = value_t<M>;
  auto na = detail::as_node<T>(a);
  auto nb = detail::as_node<T>(b);
  return ternary_node<ops::select_fn, M, decltype(na), decltype(nb)>{{}, ops::select_fn{}, cond, na, nb};
}

// ---- named intermediate values --------------------------------------------------------------------

// let<K>(e) names the value of e so later expressions of the same assign() reuse it instead of
// recomputing it (expression trees have no common-subexpression elimination of their own, and the
// compiler cannot prove two copies of a leaf point to the same array). Pass the binding to assign()
// before the outputs that use it; K counts the bindings of that assign() from 0, in order.
//
//   const auto d = expr::let<0>(g + wd * p);
//   const auto m_new = expr::let<1>(b1 * m + (1 - b1) * d);
//   expr::assign(d, m_new, expr::into(m, m_new), expr::into(p, p - lr * m_new));
template <std::size_t K, class E>
struct binding final : node_base {
  using value_type = value_t<E>;
  static constexpr std::size_t index = K;
  E src;

  template <class I, class Env>
  auto at(const I&, const Env& env) const noexcept {
    static_assert(K < std::tuple_size_v<Env>, "fnn: let<K> used before it is bound in this assign()");
    return std::get<K>(env);
  }
  template <class I, class Env>
  auto load(const I&, const Env& env) const noexcept {
    static_assert(K < std::tuple_size_v<Env>, "fnn: let<K> used before it is bound in this assign()");
    return std::get<K>(env);
  }
  index_t extent() const noexcept { return src.extent(); }
};

template <std::size_t K, expression E>
binding<K, E> let(const E& e) noexcept {
  return {{}, e};
}

}  // namespace fnn::expr

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
