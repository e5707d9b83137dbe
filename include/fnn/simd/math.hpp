#pragma once
// Elementary functions with one spelling for plain T and xsimd batches, so an activation is written
// once and runs in the reference loops (T, through <cmath>) and in fused kernels (batch, through
// xsimd's vectorized implementations).
#include <cmath>
#include <type_traits>

#include "fnn/simd/simd.hpp"

namespace fnn::simd {

template <class V>
inline constexpr bool is_batch_v = !std::is_arithmetic_v<V>;

template <class V>
inline V exp(const V& x) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::exp(x);
  else return std::exp(x);
}
template <class V>
inline V expm1(const V& x) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::expm1(x);
  else return std::expm1(x);
}
template <class V>
inline V erfc(const V& x) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::erfc(x);
  else return std::erfc(x);
}
template <class V>
inline V tanh(const V& x) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::tanh(x);
  else return std::tanh(x);
}
template <class V>
inline V abs(const V& x) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::abs(x);
  else return std::abs(x);
}
// x > 0 ? a : b, lane by lane. A NaN x takes b (every comparison with NaN is false), and so on below:
// activations pick the form whose false branch is torch's for NaN.
template <class V>
inline V if_positive(const V& x, const V& a, const V& b) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::select(x > V(0), a, b);
  else return x > V(0) ? a : b;
}
// x >= 0 ? a : b, lane by lane.
template <class V>
inline V if_non_negative(const V& x, const V& a, const V& b) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::select(x >= V(0), a, b);
  else return x >= V(0) ? a : b;
}

// x <= 0 ? a : b, lane by lane (a NaN x takes b).
template <class V>
inline V if_non_positive(const V& x, const V& a, const V& b) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::select(x <= V(0), a, b);
  else return x <= V(0) ? a : b;
}
// x < 0 ? a : b, lane by lane (a NaN x takes b).
template <class V>
inline V if_negative(const V& x, const V& a, const V& b) noexcept {
  if constexpr (is_batch_v<V>) return xsimd::select(x < V(0), a, b);
  else return x < V(0) ? a : b;
}

// dL/dx of an activation functor Fn (layers/activations.hpp) at x, y = f(x), given dy: Fn::grad(x, y, dy) where
// the functor has one (where torch's backward is a select, not a product: relu gives 0 at x <= 0 even for a NaN
// dy), else dy * Fn::df(x, y). The reference layers and the fused kernels both go through this.
template <class Fn, class V>
inline V activation_gradient(const V& x, const V& y, const V& dy) noexcept {
  if constexpr (requires { Fn::grad(x, y, dy); }) return Fn::grad(x, y, dy);
  else return dy * Fn::df(x, y);
}

}  // namespace fnn::simd
