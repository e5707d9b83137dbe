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
// x > 0 ? a : b, lane by lane.
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

}  // namespace fnn::simd
