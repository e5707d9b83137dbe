#pragma once
// int8 inference models: the quantized twin of deploy/model.hpp, for microcontrollers (4x less flash than float,
// integer arithmetic that gives the same bits on every target).
//
//   using model_t = fnn::deploy::int8::model<fnn::deploy::static_batch<1>,
//                                            fnn::deploy::int8::dense<784, 256>, fnn::deploy::int8::lookup<256>,
//                                            fnn::deploy::int8::dense<256, 10>>;
//   std::int8_t q[model_t::input_size], out[model_t::output_size];
//   model.quantize_input(image, q);
//   model.predict(q, out);                 // noexcept, no heap, integer only
//   model.dequantize_output(out, logits);
//
// The number format is the TensorFlow Lite int8 quantization specification's: real = scale * (q - zero_point);
// activations int8 in [-128, 127] with one scale and zero point per tensor (asymmetric); weights int8 in
// [-127, 127], symmetric (zero point 0), one scale per output channel; biases int32 with scale input_scale *
// weight_scale[channel] and zero point 0. A dense layer accumulates sum (x - x_zero_point) * w + bias exactly in
// int32 and requantizes with a fixed-point multiplier (Q0.31 in [0.5, 1)) and a power-of-two shift, rounded as
// the specification's reference arithmetic rounds (below). Non-linear activations are a 256-entry table computed
// at export time (lookup); ReLU is the clamp of the dense layer before it. The dense kernel is the plain C++
// reference (run_reference) except where the target has a faster one, each giving the reference's bits (exact
// int32 sums): SMLAD on Cortex-M4/M7/M33, SDOT on AArch64 with +dotprod, AVX2 on x86; define
// FNN_DEPLOY_INT8_REFERENCE_ONLY for the reference everywhere. The scales, zero points and tables come
// from host-only code (deploy/quantize.hpp, fnn-export --int8); this header builds with -fno-exceptions -fno-rtti
// and without iostream, zlib, xsimd or a heap, like model.hpp.
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "fnn/core/diagnostics.hpp"
#include "fnn/deploy/model.hpp"
#if defined(__AVX2__) && !defined(FNN_DEPLOY_INT8_REFERENCE_ONLY)
#include <immintrin.h>  // the x86 kernel's only dependency; a microcontroller build never sees it
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD) && !defined(FNN_DEPLOY_INT8_REFERENCE_ONLY)
#include <arm_neon.h>
#endif

namespace fnn::deploy::int8 {

// ---- the requantization arithmetic -------------------------------------------------------------------------
// round(a * b / 2^31) with ties rounded up (towards +infinity), saturated: the one product that does not fit,
// (-2^31) * (-2^31) / 2^31 = 2^31, gives 2^31 - 1. The Q0.31 fixed-point multiply of the specification's
// reference kernels (AArch64's SQRDMULH computes the same).
constexpr std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) noexcept {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const std::int64_t ab = std::int64_t(a) * std::int64_t(b);
  // Division truncates towards zero, so the nudge is +1/2 for a non-negative product and (1/2 - 2^-31) for a
  // negative one: both round half up.
  const std::int64_t nudge = ab >= 0 ? (std::int64_t(1) << 30) : 1 - (std::int64_t(1) << 30);
  return std::int32_t((ab + nudge) / (std::int64_t(1) << 31));
}

// round(x / 2^exponent) with ties rounded away from zero, exponent in [0, 31]. C++20 defines >> of a negative
// value as the arithmetic shift (floor), which the remainder then corrects.
constexpr std::int32_t rounding_divide_by_pot(std::int32_t x, int exponent) noexcept {
  const std::int32_t mask = std::int32_t((std::uint32_t(1) << exponent) - 1u);
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// x * multiplier * 2^shift / 2^31 with the specification's two roundings: a left shift (shift > 0) before the
// fixed-point multiply, saturated to int32 where the reference arithmetic would overflow, and a rounding right
// shift (shift < 0) after it. shift in [-31, 30].
constexpr std::int32_t multiply_by_quantized_multiplier(std::int32_t x, std::int32_t multiplier, int shift) noexcept {
  if (shift > 0) {
    const std::int64_t wide = std::int64_t(x) * (std::int64_t(1) << shift);
    x = wide > INT32_MAX ? INT32_MAX : wide < INT32_MIN ? INT32_MIN : std::int32_t(wide);
  }
  const std::int32_t high = saturating_rounding_doubling_high_mul(x, multiplier);
  return shift < 0 ? rounding_divide_by_pot(high, -shift) : high;
}

// The scale and zero point of a tensor: real = scale * (q - zero_point).
struct quantization final {
  float scale;
  std::int32_t zero_point;
};

namespace detail {
constexpr std::int8_t clamp_int8(std::int32_t v, std::int32_t lo, std::int32_t hi) noexcept {
  return std::int8_t(v < lo ? lo : v > hi ? hi : v);
}

// The integer accumulator of one output: bias + sum (x - zero_point) * w, exact in int32 for In < 2^16 (each term
// is at most 255 * 127 in magnitude).
template <std::size_t In>
constexpr std::int32_t accumulate(const std::int8_t* w, const std::int8_t* x, std::int32_t x_zero_point,
                                  std::int32_t bias) noexcept {
  std::int32_t acc = bias;
  for (std::size_t k = 0; k < In; ++k) acc += (std::int32_t(x[k]) - x_zero_point) * std::int32_t(w[k]);
  return acc;
}

#if defined(__ARM_FEATURE_SIMD32) && defined(__ARM_FEATURE_DSP) && !defined(FNN_DEPLOY_INT8_REFERENCE_ONLY)
// Cortex-M4/M7/M33 (the DSP extension): four multiply-accumulates in two SMLAD, on pairs of sign-extended 16-bit
// values. SXTB16 takes bytes 0 and 2 of a word, and after a rotation by 8 bytes 1 and 3. The input row is
// expanded once per row (expand_row: the zero point subtracted, every difference fits int16), so the inner loop
// loads one word of weights and two of input per four products. The same exact int32 sum as accumulate(), in
// another order: integer addition is associative and nothing overflows, so the bits are the reference's
// (int8_check.hpp compares both kernels on the device, and the outputs with the x86 reference).
#define FNN_DEPLOY_INT8_SMLAD 1
inline constexpr bool has_smlad = true;
inline std::uint32_t ror8(std::uint32_t v) noexcept { return (v >> 8) | (v << 24); }

// pairs[2g] = (x[4g] - zp, x[4g+2] - zp), pairs[2g+1] = (x[4g+1] - zp, x[4g+3] - zp) as 16-bit halves.
template <std::size_t In>
inline void expand_row(const std::int8_t* x, std::int32_t x_zero_point, std::uint32_t* pairs) noexcept {
  const auto zp2 = int((std::uint32_t(x_zero_point) & 0xFFFFu) * 0x10001u);
  for (std::size_t g = 0; g < In / 4; ++g) {
    std::uint32_t v;
    __builtin_memcpy(&v, x + 4 * g, 4);
    pairs[2 * g] = std::uint32_t(__builtin_arm_ssub16(__builtin_arm_sxtb16(int(v)), zp2));
    pairs[2 * g + 1] = std::uint32_t(__builtin_arm_ssub16(__builtin_arm_sxtb16(int(ror8(v))), zp2));
  }
}
// Not inlined: inlined into the output loop, GCC 12 spilled the pairs through the stack (16 instructions per four
// products instead of 11, measured on the M4F test image).
template <std::size_t In>
[[gnu::noinline]] std::int32_t accumulate_smlad(const std::int8_t* __restrict w, const std::uint32_t* __restrict pairs,
                                                const std::int8_t* x, std::int32_t x_zero_point,
                                                std::int32_t bias) noexcept {
  int acc = bias;
  for (std::size_t g = 0; g < In / 4; ++g) {
    std::uint32_t wv;
    __builtin_memcpy(&wv, w + 4 * g, 4);
    const int p0 = int(pairs[2 * g]), p1 = int(pairs[2 * g + 1]);
    acc = __builtin_arm_smlad(p0, __builtin_arm_sxtb16(int(wv)), acc);
    acc = __builtin_arm_smlad(p1, __builtin_arm_sxtb16(int(ror8(wv))), acc);
  }
  for (std::size_t k = In / 4 * 4; k < In; ++k) acc += (std::int32_t(x[k]) - x_zero_point) * std::int32_t(w[k]);
  return acc;
}
#else
inline constexpr bool has_smlad = false;
#endif

#if defined(__AVX2__) && !defined(FNN_DEPLOY_INT8_REFERENCE_ONLY)
// x86 with AVX2: the input row expanded once to int16 (x - zero point, which fits), then four outputs at a time,
// sixteen products per VPMADDWD (weights sign-extended from int8 with VPMOVSXBW; pairs of int16 products summed
// into int32 lanes, exact: |product| <= 255 * 127). Exact int32 sums, so the reference's bits (the unit test
// int8_model/avx2_kernel_matches_the_reference compares both on random layers of many widths).
#define FNN_DEPLOY_INT8_AVX2 1
inline constexpr bool has_avx2 = true;
template <std::size_t In>
inline void expand_row16(const std::int8_t* x, std::int32_t x_zero_point, std::int16_t* xe) noexcept {
  for (std::size_t k = 0; k < In; ++k) xe[k] = std::int16_t(std::int32_t(x[k]) - x_zero_point);
}
template <std::size_t In, std::size_t B>
inline void accumulate_avx2(const std::int8_t* w, const std::int16_t* xe, const std::int32_t* bias,
                            std::int32_t* out) noexcept {
  __m256i acc[B];
  for (std::size_t b = 0; b < B; ++b) acc[b] = _mm256_setzero_si256();
  for (std::size_t k = 0; k + 16 <= In; k += 16) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xe + k));
    for (std::size_t b = 0; b < B; ++b) {
      const __m256i wv =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + b * In + k)));
      acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(xv, wv));
    }
  }
  for (std::size_t b = 0; b < B; ++b) {
    alignas(32) std::int32_t lanes[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[b]);
    std::int32_t s = bias[b];
    for (std::int32_t v : lanes) s += v;
    if constexpr (In % 16 != 0)  // (a guard, not just the bound: GCC 12 warns on the empty tail loop otherwise)
      for (std::size_t j = In / 16 * 16; j < In; ++j) s += std::int32_t(xe[j]) * std::int32_t(w[b * In + j]);
    out[b] = s;
  }
}
#else
inline constexpr bool has_avx2 = false;
#endif

#if !defined(FNN_DEPLOY_INT8_AVX2) && defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD) && \
    !defined(FNN_DEPLOY_INT8_REFERENCE_ONLY)
// AArch64 with the dot-product extension (-march=armv8.2-a+dotprod): SDOT on the raw int8 values, sixteen products
// per instruction, and sum (x - zp) w computed as sum x w - zp sum w, with sum w from a second SDOT against ones.
// Both sums and the correction are exact in int32 (at most 65535 * 128 * 127 in magnitude), so the value is the
// reference's (deploy_int8_aarch64_dotprod_qemu compares with the x86 reference outputs and run_reference).
#define FNN_DEPLOY_INT8_DOTPROD 1
inline constexpr bool has_dotprod = true;
template <std::size_t In, std::size_t B>
inline void accumulate_dotprod(const std::int8_t* w, const std::int8_t* x, std::int32_t x_zero_point,
                               const std::int32_t* bias, std::int32_t* out) noexcept {
  int32x4_t acc[B], wsum[B];
  for (std::size_t b = 0; b < B; ++b) acc[b] = vdupq_n_s32(0), wsum[b] = vdupq_n_s32(0);
  const int8x16_t ones = vdupq_n_s8(1);
  for (std::size_t k = 0; k + 16 <= In; k += 16) {
    const int8x16_t xv = vld1q_s8(x + k);
    for (std::size_t b = 0; b < B; ++b) {
      const int8x16_t wv = vld1q_s8(w + b * In + k);
      acc[b] = vdotq_s32(acc[b], xv, wv);
      wsum[b] = vdotq_s32(wsum[b], ones, wv);
    }
  }
  for (std::size_t b = 0; b < B; ++b) {
    std::int32_t s = bias[b] + vaddvq_s32(acc[b]) - x_zero_point * vaddvq_s32(wsum[b]);
    if constexpr (In % 16 != 0)
      for (std::size_t j = In / 16 * 16; j < In; ++j) s += (std::int32_t(x[j]) - x_zero_point) * std::int32_t(w[b * In + j]);
    out[b] = s;
  }
}
#else
inline constexpr bool has_dotprod = false;
#endif
}  // namespace detail

// ---- layers -------------------------------------------------------------------------------------------------
// y = clamp(requantize(x W^T + b) + output_zero_point, output_min, output_max), W [Out, In] as torch.nn.Linear
// (a batch norm after it already folded in). output_min / output_max are -128 / 127, or the clamp of a ReLU.
template <std::size_t In, std::size_t Out>
struct dense final {
  static_assert(In > 0 && Out > 0, "fnn: deploy::int8::dense needs positive widths");
  static_assert(In < (std::size_t(1) << 16), "fnn: deploy::int8::dense accumulates in int32, up to 65535 inputs");
  static constexpr std::size_t in_features = In, out_features = Out;
  struct params {
    std::int8_t weight[Out * In];     // per output channel symmetric, in [-127, 127]
    std::int32_t bias[Out];           // scale input_scale * weight_scale[o], zero point 0
    std::int32_t multiplier[Out];     // Q0.31 of input_scale * weight_scale[o] / output_scale, in [2^30, 2^31)
    std::int8_t shift[Out];           // its power of two
    std::int32_t input_zero_point, output_zero_point;
    std::int8_t output_min, output_max;
  };
  static constexpr std::size_t parameter_count = Out * In + Out;
  static constexpr std::size_t parameter_bytes = sizeof(params);
  // Stack of run() beyond its frame: the expanded input row of the SMLAD kernel.
  static constexpr std::size_t kernel_stack_bytes =
      detail::has_smlad ? (In / 4) * 8 : detail::has_avx2 ? In * sizeof(std::int16_t) : 0;

  static std::int8_t requantize(const params& p, std::size_t o, std::int32_t acc) noexcept {
    const std::int32_t v = multiply_by_quantized_multiplier(acc, p.multiplier[o], p.shift[o]) + p.output_zero_point;
    return detail::clamp_int8(v, p.output_min, p.output_max);
  }
  // The reference: the specification's arithmetic, one output at a time.
  static void run_reference(const params& p, const std::int8_t* x, std::int8_t* y, std::size_t rows) noexcept {
    for (std::size_t r = 0; r < rows; ++r, x += In, y += Out)
      for (std::size_t o = 0; o < Out; ++o)
        y[o] = requantize(p, o, detail::accumulate<In>(p.weight + o * In, x, p.input_zero_point, p.bias[o]));
  }
  static void run(const params& p, const std::int8_t* x, std::int8_t* y, std::size_t rows) noexcept {
#if defined(FNN_DEPLOY_INT8_SMLAD)
    std::uint32_t pairs[In / 4 > 0 ? In / 2 : 1];
    for (std::size_t r = 0; r < rows; ++r, x += In, y += Out) {
      detail::expand_row<In>(x, p.input_zero_point, pairs);
      for (std::size_t o = 0; o < Out; ++o)
        y[o] = requantize(p, o,
                          detail::accumulate_smlad<In>(p.weight + o * In, pairs, x, p.input_zero_point, p.bias[o]));
    }
#elif defined(FNN_DEPLOY_INT8_DOTPROD)
    constexpr std::size_t B = 4;
    for (std::size_t r = 0; r < rows; ++r, x += In, y += Out) {
      std::size_t o = 0;
      for (; o + B <= Out; o += B) {
        std::int32_t acc[B];
        detail::accumulate_dotprod<In, B>(p.weight + o * In, x, p.input_zero_point, p.bias + o, acc);
        for (std::size_t b = 0; b < B; ++b) y[o + b] = requantize(p, o + b, acc[b]);
      }
      for (; o < Out; ++o) {
        std::int32_t acc;
        detail::accumulate_dotprod<In, 1>(p.weight + o * In, x, p.input_zero_point, p.bias + o, &acc);
        y[o] = requantize(p, o, acc);
      }
    }
#elif defined(FNN_DEPLOY_INT8_AVX2)
    constexpr std::size_t B = 4;
    std::int16_t xe[In];
    for (std::size_t r = 0; r < rows; ++r, x += In, y += Out) {
      detail::expand_row16<In>(x, p.input_zero_point, xe);
      std::size_t o = 0;
      for (; o + B <= Out; o += B) {
        std::int32_t acc[B];
        detail::accumulate_avx2<In, B>(p.weight + o * In, xe, p.bias + o, acc);
        for (std::size_t b = 0; b < B; ++b) y[o + b] = requantize(p, o + b, acc[b]);
      }
      for (; o < Out; ++o) {
        std::int32_t acc;
        detail::accumulate_avx2<In, 1>(p.weight + o * In, xe, p.bias + o, &acc);
        y[o] = requantize(p, o, acc);
      }
    }
#else
    run_reference(p, x, y, rows);
#endif
  }
};

// An element-wise function through a table of its 256 results, computed at export time: y = table[x + 128].
// Every activation but ReLU (GELU, SELU, sigmoid, tanh, PReLU, ...) is one of these after its dense layer.
template <std::size_t F>
struct lookup final {
  static constexpr std::size_t in_features = F, out_features = F;
  struct params {
    std::int8_t table[256];
  };
  static constexpr std::size_t parameter_count = 256;
  static constexpr std::size_t parameter_bytes = sizeof(params);
  static constexpr std::size_t kernel_stack_bytes = 0;
  static void run(const params& p, const std::int8_t* x, std::int8_t* y, std::size_t rows) noexcept {
    for (std::size_t i = 0; i < rows * F; ++i) y[i] = p.table[std::size_t(std::int32_t(x[i]) + 128)];
  }
};

// Maxout over groups of Pieces consecutive features: the max commutes with a positive-scale quantization, so
// input and output share one scale and zero point.
template <std::size_t In, std::size_t Pieces>
struct maxout final {
  static_assert(
      diagnostics::holds<typename diagnostics::deploy_maxout_pieces<Pieces>::template must_divide_in_features<In>>);
  static constexpr std::size_t in_features = In, out_features = In / Pieces;
  struct params {};
  static constexpr std::size_t parameter_count = 0;
  static constexpr std::size_t parameter_bytes = 0;
  static constexpr std::size_t kernel_stack_bytes = 0;
  static void run(const params&, const std::int8_t* x, std::int8_t* y, std::size_t rows) noexcept {
    for (std::size_t i = 0; i < rows * out_features; ++i) {
      const std::int8_t* g = x + i * Pieces;
      std::int8_t best = g[0];
      for (std::size_t q = 1; q < Pieces; ++q) best = g[q] > best ? g[q] : best;
      y[i] = best;
    }
  }
};

// ---- the model ----------------------------------------------------------------------------------------------
template <class Batch, class... Layers>
struct model final {
  static_assert(sizeof...(Layers) > 0, "fnn: an int8 deploy model needs a layer");
  static_assert(deploy::detail::widths_chain<Layers...>());

  template <std::size_t I>
  using layer = typename deploy::detail::nth<I, Layers...>::type;
  using params_type = deploy::detail::param_pack<typename Layers::params...>;

  static constexpr std::size_t layer_count = sizeof...(Layers);
  static constexpr std::size_t batch = Batch::value;
  static constexpr std::size_t in_features = layer<0>::in_features;
  static constexpr std::size_t out_features = layer<layer_count - 1>::out_features;
  static constexpr std::size_t input_size = batch * in_features;    // int8 values predict reads
  static constexpr std::size_t output_size = batch * out_features;  // int8 values predict writes
  static constexpr std::size_t parameter_count = (Layers::parameter_count + ...);
  // Flash of the weights, biases, multipliers, zero points and tables (the layers' params as laid out).
  static constexpr std::size_t weight_bytes = (Layers::parameter_bytes + ...) + 2 * sizeof(quantization);
  static constexpr std::size_t scratch_offset = batch * deploy::detail::widest<0, Layers...>();
  static constexpr std::size_t scratch_size = scratch_offset + batch * deploy::detail::widest<1, Layers...>();
  static constexpr std::size_t scratch_bytes = scratch_size;  // int8: one byte each
  // What predict() puts on the stack beyond the frames: its scratch and the largest kernel buffer.
  static constexpr std::size_t kernel_stack_bytes = [] {
    std::size_t m = 0;
    for (std::size_t b : {Layers::kernel_stack_bytes...}) m = b > m ? b : m;
    return m;
  }();
  static constexpr std::size_t stack_bytes = scratch_bytes + kernel_stack_bytes;

  quantization input;   // of the values predict reads
  quantization output;  // of the values predict writes
  params_type params;

  // batch samples of in_features int8 -> batch samples of out_features int8; `in` and `out` must not overlap.
  void predict(const std::int8_t* in, std::int8_t* out) const noexcept {
    std::int8_t scratch[scratch_size > 0 ? scratch_size : 1];
    run(in, out, scratch, batch);
  }
  // The same with a caller's buffer of scratch_size bytes.
  void predict(const std::int8_t* in, std::int8_t* out, std::int8_t* scratch) const noexcept {
    run(in, out, scratch, batch);
  }
  status predict_rows(const std::int8_t* in, std::size_t rows, std::int8_t* out) const noexcept {
    if (in == nullptr || out == nullptr) return status::null_pointer;
    if (rows == 0) return status::empty_batch;
    if (rows > batch) return status::batch_too_large;
    std::int8_t scratch[scratch_size > 0 ? scratch_size : 1];
    run(in, out, scratch, rows);
    return status::ok;
  }

  // q = clamp(round(x / scale) + zero_point, -128, 127), ties away from zero, for n values (input_size by
  // default). IEEE division is correctly rounded on every target (hardware or libgcc's soft float), and the
  // rounding below is exact, so the same float gives the same int8 everywhere; NaN gives -128.
  void quantize_input(const float* x, std::int8_t* q, std::size_t n = input_size) const noexcept {
    for (std::size_t i = 0; i < n; ++i) {
      float v = x[i] / input.scale;
      v = v > -512.0f ? (v < 512.0f ? v : 512.0f) : -512.0f;  // NaN compares false: -512
      std::int32_t r = std::int32_t(v);                      // truncates towards zero
      const float frac = v - float(r);                       // exact
      r += frac >= 0.5f ? 1 : frac <= -0.5f ? -1 : 0;
      q[i] = detail::clamp_int8(r + input.zero_point, -128, 127);
    }
  }
  // y = scale * (q - zero_point) for n values (output_size by default).
  void dequantize_output(const std::int8_t* q, float* y, std::size_t n = output_size) const noexcept {
    for (std::size_t i = 0; i < n; ++i) y[i] = output.scale * float(std::int32_t(q[i]) - output.zero_point);
  }

 private:
  void run(const std::int8_t* in, std::int8_t* out, std::int8_t* scratch, std::size_t rows) const noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (run_layer<I>(in, out, scratch, rows), ...);
    }(std::make_index_sequence<layer_count>{});
  }
  template <std::size_t I>
  void run_layer(const std::int8_t* in, std::int8_t* out, std::int8_t* scratch, std::size_t rows) const noexcept {
    const std::int8_t* x = I == 0 ? in : scratch + (I % 2 ? scratch_offset : 0);
    std::int8_t* y = I + 1 == layer_count ? out : scratch + ((I + 1) % 2 ? scratch_offset : 0);
    layer<I>::run(deploy::detail::get<I>(params), x, y, rows);
  }
};

template <std::size_t I, class Batch, class... L>
constexpr auto& params_of(model<Batch, L...>& m) noexcept {
  return deploy::detail::get<I>(m.params);
}

}  // namespace fnn::deploy::int8
