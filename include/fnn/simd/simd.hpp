#pragma once
// The only header that includes xsimd. Everything vectorized in fnn goes through these names, so the
// xsimd version (Debian ships 8.1) and the scalar fallback are handled in one place.
//
// FNN_FORCE_SCALAR=1 makes `fnn::simd::enabled` false: kernels then take their scalar paths (tests run
// that way too, so the fallback is not dead code).
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>

// GCC 12 reports the _mm512_undefined_*() operands inside AVX-512 intrinsics as (maybe-)uninitialized
// wherever xsimd's out-of-line math (erfc, exp) uses them: a false positive (GCC bug 105593, fixed in
// GCC 13). GCC looks the warning state up at the intrinsic's own source location, so suppressing it
// around the include covers every later use, and nothing else.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop

// Kernels take the SIMD width the compiler targets. Without AVX2 + FMA on x86-64 that is SSE2, several
// times slower, and nothing else would tell: say so once per translation unit. A #pragma message is a
// note in GCC (never an error under -Werror), a -W#pragma-messages warning in Clang. fnn::portable
// and deliberately portable builds define FNN_ALLOW_BASELINE_ISA.
#if defined(__x86_64__) && !(defined(__AVX2__) && defined(__FMA__)) && !defined(FNN_ALLOW_BASELINE_ISA) && \
    !(defined(FNN_FORCE_SCALAR) && FNN_FORCE_SCALAR)
#pragma message( \
    "fnn: compiled for x86-64 without AVX2/FMA, so the SIMD kernels run at SSE2 width (3-4x slower): link " \
    "fnn::fnn from the installed package (it adds -march=native), or add -march=native (or the target's " \
    "-march) to the flags; define FNN_ALLOW_BASELINE_ISA (or link fnn::portable) for a portable binary")
#endif

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

// ---- Generic vector helpers -------------------------------------------------------------------------------
// Kernels are written once over a "vector" type V that is either xsimd::batch<T, Arch> or plain T (the scalar
// fallback and the column tails of a tile). These overloads give both the same spelling.

template <class V>
struct lanes : std::integral_constant<std::size_t, 1> {};
template <class T, class A>
struct lanes<xsimd::batch<T, A>> : std::integral_constant<std::size_t, xsimd::batch<T, A>::size> {};
// Number of elements in V (1 for a scalar).
template <class V>
inline constexpr std::size_t lanes_v = lanes<V>::value;

template <class V>
struct scalar_of {
  using type = V;
};
template <class T, class A>
struct scalar_of<xsimd::batch<T, A>> {
  using type = T;
};
template <class V>
using scalar_of_t = typename scalar_of<V>::type;

// Loads lanes_v<V> consecutive elements (unaligned), or one element for a scalar V.
template <class V>
inline V load_as(const scalar_of_t<V>* p) noexcept {
  if constexpr (std::is_arithmetic_v<V>) {
    return *p;
  } else {
    return V::load_unaligned(p);
  }
}
template <class V>
inline V load_aligned_as(const scalar_of_t<V>* p) noexcept {
  if constexpr (std::is_arithmetic_v<V>) {
    return *p;
  } else {
    return V::load_aligned(p);
  }
}
template <class V>
inline void store_as(scalar_of_t<V>* p, const V& v) noexcept {
  if constexpr (std::is_arithmetic_v<V>) {
    *p = v;
  } else {
    v.store_unaligned(p);
  }
}
template <class V>
inline V splat(scalar_of_t<V> x) noexcept {
  return V(x);
}

// x * y + z, fused where the target has FMA. Scalars too: left as x * y + z, whether it is contracted into
// an FMA would be the compiler's choice at each use, and the scalar tail of a loop could round differently
// from its vector lanes, or one GEMM tile from another.
template <class T>
  requires std::is_floating_point_v<T>
inline T fma(T x, T y, T z) noexcept {
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
  return std::fma(x, y, z);
#else
  return x * y + z;
#endif
}
// xsimd 8.1 has no AVX-512 fma kernel: its avx512f fma is the generic x * y + z, fused only where the compiler
// contracts it (GCC does at -O2, not at -O1: the ASan build's lanes then rounded twice while the scalar tail,
// std::fma, rounded once). The AVX-512 instructions are called directly.
template <class T, class A>
inline xsimd::batch<T, A> fma(const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y,
                              const xsimd::batch<T, A>& z) noexcept {
#if defined(__AVX512F__)
  if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, float>) {
    return _mm512_fmadd_ps(x, y, z);
  } else if constexpr (std::is_base_of_v<xsimd::avx512f, A> && std::is_same_v<T, double>) {
    return _mm512_fmadd_pd(x, y, z);
  } else {
    return xsimd::fma(x, y, z);
  }
#else
  return xsimd::fma(x, y, z);
#endif
}

// max(x, y) that returns x when x is NaN (and x when y is NaN): put the value that must propagate first,
// e.g. max(v, V(0)) keeps a NaN v, as torch's relu and clamp do. (The x86 max instructions return their
// SECOND operand when either is NaN, which is why this is a select and not xsimd::max.)
template <class T>
  requires std::is_arithmetic_v<T>
inline T max(T x, T y) noexcept {
  return x < y ? y : x;
}
template <class T, class A>
inline xsimd::batch<T, A> max(const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y) noexcept {
  // Not xsimd::max: GCC 12 flags the _mm512_undefined_ps inside _mm512_max_ps as maybe-uninitialized (-Werror).
  return xsimd::select(x < y, y, x);
}

// Sum of the lanes, as a pairwise tree in a fixed order. (Not xsimd::hadd: on AVX-512 doubles it goes through
// _mm512_extractf64x4_pd, whose _mm256_undefined_pd GCC 12 flags as maybe-uninitialized under -Werror.)
template <class T>
  requires std::is_arithmetic_v<T>
inline T reduce_add(T x) noexcept {
  return x;
}
template <class T, class A>
inline T reduce_add(const xsimd::batch<T, A>& x) noexcept {
  constexpr std::size_t n = xsimd::batch<T, A>::size;
  alignas(64) T v[n];
  x.store_aligned(v);
  for (std::size_t half = n / 2; half > 0; half /= 2)
    for (std::size_t i = 0; i < half; ++i) v[i] += v[i + half];
  return v[0];
}

// Transposes the lanes_v<V> x lanes_v<V> block held in r[0..lanes): afterwards r[j][i] is the old r[i][j].
// xsimd 8.1 has no portable transpose (its zip_lo/zip_hi stay inside 128-bit lanes on AVX-512), so AVX-512
// floats get the unpack / shuffle / 128-bit-lane shuffle network; other targets go through memory.
template <class V>
inline void transpose(V* r) noexcept {
  constexpr std::size_t n = lanes_v<V>;
  using T = scalar_of_t<V>;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float> && n == 16) {
    // The masked forms (all lanes selected) give the same instructions; GCC 12 flags the unmasked ones'
    // _mm512_undefined_ps as uninitialized under -Werror.
    __m512 a[16], b[16];
    for (int i = 0; i < 16; i += 2) {
      a[i] = _mm512_mask_unpacklo_ps(r[i], 0xFFFF, r[i], r[i + 1]);
      a[i + 1] = _mm512_mask_unpackhi_ps(r[i], 0xFFFF, r[i], r[i + 1]);
    }
    // b[4q + c], 128-bit lane L: rows 4q .. 4q+3 of column 4L + c.
    for (int q = 0; q < 16; q += 4) {
      b[q] = _mm512_mask_shuffle_ps(a[q], 0xFFFF, a[q], a[q + 2], 0x44);
      b[q + 1] = _mm512_mask_shuffle_ps(a[q], 0xFFFF, a[q], a[q + 2], 0xEE);
      b[q + 2] = _mm512_mask_shuffle_ps(a[q + 1], 0xFFFF, a[q + 1], a[q + 3], 0x44);
      b[q + 3] = _mm512_mask_shuffle_ps(a[q + 1], 0xFFFF, a[q + 1], a[q + 3], 0xEE);
    }
    // A 4 x 4 transpose of 128-bit lanes for each c.
    for (int c = 0; c < 4; ++c) {
      const __m512 e0 = _mm512_mask_shuffle_f32x4(b[c], 0xFFFF, b[c], b[4 + c], 0x44);
      const __m512 e1 = _mm512_mask_shuffle_f32x4(b[c], 0xFFFF, b[c], b[4 + c], 0xEE);
      const __m512 e2 = _mm512_mask_shuffle_f32x4(b[8 + c], 0xFFFF, b[8 + c], b[12 + c], 0x44);
      const __m512 e3 = _mm512_mask_shuffle_f32x4(b[8 + c], 0xFFFF, b[8 + c], b[12 + c], 0xEE);
      r[c] = V(_mm512_mask_shuffle_f32x4(e0, 0xFFFF, e0, e2, 0x88));
      r[4 + c] = V(_mm512_mask_shuffle_f32x4(e0, 0xFFFF, e0, e2, 0xDD));
      r[8 + c] = V(_mm512_mask_shuffle_f32x4(e1, 0xFFFF, e1, e3, 0x88));
      r[12 + c] = V(_mm512_mask_shuffle_f32x4(e1, 0xFFFF, e1, e3, 0xDD));
    }
    return;
  }
#endif
  if constexpr (n > 1) {
    alignas(64) T m[n * n];
    for (std::size_t i = 0; i < n; ++i) store_as<V>(m + i * n, r[i]);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < i; ++j) std::swap(m[i * n + j], m[j * n + i]);
    for (std::size_t i = 0; i < n; ++i) r[i] = load_as<V>(m + i * n);
  }
}

// Lane i of the result is the sum of the lanes of r[i], for the lanes_v<V> vectors r[0 .. lanes): the horizontal
// sums of a whole block of dot products at once (a matrix-vector product), a few shuffles and adds where
// lanes_v<V> reduce_add calls would each go through memory. Plain adds, so a NaN lane gives a NaN sum.
// On AVX-512 it is a transpose and lanes - 1 vector adds (lane i: ((r[i][0] + r[i][1]) + r[i][2]) + ...):
// xsimd 8.1's AVX-512 haddp returns the sums of r[2..5] and r[10..13] in the wrong lanes (measured on AMD
// EPYC with AVX-512: lane 2 held r[4]'s sum), which made every batch-of-16-or-fewer inference wrong there.
template <class V>
inline V reduce_add_each(const V* r) noexcept {
  if constexpr (std::is_arithmetic_v<V>) {
    return r[0];
  } else if constexpr (sizeof(V) == 64) {
    constexpr std::size_t n = lanes_v<V>;
    V t[n];
    for (std::size_t i = 0; i < n; ++i) t[i] = r[i];
    transpose(t);
    V s = t[0];
    for (std::size_t j = 1; j < n; ++j) s = s + t[j];
    return s;
  } else {
    return xsimd::haddp(r);
  }
}

// Architectural vector registers of Arch (the register budget of a GEMM micro-kernel): 32 on AVX-512 and
// AArch64, 16 elsewhere (SSE/AVX/AVX2 on x86-64, ARMv7 NEON).
template <class Arch>
inline constexpr int vector_registers = [] {
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
    return 32;
  } else if constexpr (std::is_base_of_v<xsimd::neon64, Arch>) {
    return 32;
  } else {
    return 16;
  }
}();

namespace detail {
// A template, so that the discarded branch is not instantiated (xsimd::generic has no name()).
template <class A>
inline const char* arch_name_of() noexcept {
  if constexpr (enabled && requires { A::name(); }) {
    return A::name();
  } else {
    return "scalar";
  }
}
}  // namespace detail

inline const char* arch_name() noexcept { return detail::arch_name_of<arch>(); }

}  // namespace fnn::simd
