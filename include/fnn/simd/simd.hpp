#pragma once
// The only header that includes xsimd. Everything vectorized in fnn goes through these names, so the
// xsimd version (Debian ships 8.1) and the scalar fallback are handled in one place.
//
// FNN_FORCE_SCALAR=1 makes `fnn::simd::enabled` false: kernels then take their scalar paths (tests run
// that way too, so the fallback is not dead code).
#include <cstddef>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace fnn::simd {

#if defined(FNN_FORCE_SCALAR) && FNN_FORCE_SCALAR
inline constexpr bool enabled = false;
using arch = xsimd::generic;
#else
using arch = xsimd::default_arch;
inline constexpr bool enabled = !std::is_same_v<arch, xsimd::unavailable>;
#endif

// batch<T> is the widest register of the build's target; only meaningful when `enabled`.
template <class T>
using batch = xsimd::batch<T, std::conditional_t<enabled, arch, xsimd::default_arch>>;

// Elements per register, 1 on the scalar fallback.
template <class T>
inline constexpr std::size_t width = enabled ? batch<T>::size : 1;

template <class T>
inline batch<T> load(const T* p) noexcept {
  return batch<T>::load_unaligned(p);
}
template <class T>
inline batch<T> load_aligned(const T* p) noexcept {
  return batch<T>::load_aligned(p);
}
template <class T>
inline void store(T* p, const batch<T>& v) noexcept {
  v.store_unaligned(p);
}
template <class T>
inline void store_aligned(T* p, const batch<T>& v) noexcept {
  v.store_aligned(p);
}
template <class T>
inline batch<T> broadcast(T v) noexcept {
  return batch<T>(v);
}

inline const char* arch_name() noexcept {
  if constexpr (enabled) {
    return arch::name();
  } else {
    return "scalar";
  }
}

}  // namespace fnn::simd
