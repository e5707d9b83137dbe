#pragma once
// The check every target runs: the exported model on the embedded images, against the x86 reference logits.
// Pure computation, no I/O, so the same code runs hosted (aarch64 under qemu-user) and bare-metal (Cortex-M).
//
// Tolerance. The kernels are the same code with the same summation order on every target, built with
// -ffp-contract=off, and IEEE single-precision + and * are correctly rounded on x86 SSE, AArch64 and the M4F's
// FPv4 (and in libgcc's soft float on M0): the dense layers alone give the same bits everywhere. What differs is
// the C library's erfcf/expf inside GELU (glibc vs newlib, each within a few ulp of the true value). A relative
// error of e in a hidden activation reaches a logit through sum_k |w_k| |h_k| e; the bound used, 1e-4 * (1 +
// |logit|), is ~100x the measured worst difference (printed by the test) and far below the gap between the top
// two logits that decides the class. The argmax must be identical for every image.
#include <cstdint>

#include "device_data.hpp"
#include "device_model.hpp"

namespace device_check {

inline constexpr const char* name = "deploy";
inline constexpr const char* worst_unit = " ulp";

struct result {
  int images = 0, argmax_mismatches = 0, out_of_tolerance = 0, right = 0;
  std::uint32_t worst_ulps = 0;  // largest difference from the reference in units in the last place
  std::uint32_t exact = 0;       // logits with the very same bits as x86
};

inline std::uint32_t bits(float v) {
  std::uint32_t u;
  __builtin_memcpy(&u, &v, sizeof u);
  return u;
}
inline std::uint32_t ulps(float a, float b) {
  const auto key = [](float v) {  // monotone integer image of the float line
    const std::uint32_t u = bits(v);
    return (u & 0x80000000u) ? 0x80000000u - (u & 0x7fffffffu) : 0x80000000u + u;
  };
  const std::uint32_t x = key(a), y = key(b);
  return x > y ? x - y : y - x;
}

// The self test (FNN_DEVICE_SELF_TEST) compares against a corrupted reference: every logit moved by ten times the
// tolerance and every expected class shifted by one, so that it passes only if every single check fails.
#if defined(FNN_DEVICE_SELF_TEST)
inline constexpr bool self_test = true;
#else
inline constexpr bool self_test = false;
#endif

inline result run() {
  using model_t = device_model::model_type;
  static_assert(model_t::in_features == 784 && model_t::out_features == 10 && model_t::batch == 1);
  result r;
  for (int i = 0; i < device_data::count; ++i) {
    float out[10];
    device_model::model.predict(device_data::images + i * 784, out);
    float ref[10];
    for (int c = 0; c < 10; ++c) {
      const float v = device_data::reference_logits[i * 10 + c];
      ref[c] = self_test ? v + 1e-3f * (1.0f + (v > 0 ? v : -v)) : v;
    }
    int best = 0;
    for (int c = 0; c < 10; ++c) {
      best = out[c] > out[best] ? c : best;
      const float d = out[c] > ref[c] ? out[c] - ref[c] : ref[c] - out[c];
      const float mag = ref[c] > 0 ? ref[c] : -ref[c];
      if (!(d <= 1e-4f * (1.0f + mag))) ++r.out_of_tolerance;
      const std::uint32_t u = ulps(out[c], ref[c]);
      r.worst_ulps = u > r.worst_ulps ? u : r.worst_ulps;
      r.exact += u == 0;
    }
    r.argmax_mismatches += best != (device_data::reference_argmax[i] + (self_test ? 1 : 0)) % 10;
    r.right += best == device_data::labels[i];
    ++r.images;
  }
  return r;
}

inline bool passed(const result& r) {
  if (self_test)
    return r.images == device_data::count && r.argmax_mismatches == r.images && r.out_of_tolerance == r.images * 10;
  return r.images == device_data::count && r.argmax_mismatches == 0 && r.out_of_tolerance == 0;
}

}  // namespace device_check
