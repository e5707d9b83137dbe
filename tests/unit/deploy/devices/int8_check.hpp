#pragma once
// The int8 twin of device_check.hpp: the exported int8 model (fnn-export --int8) on the embedded test images,
// quantized on the device by the model's quantize_input, against the int8 outputs the x86 build of the same
// reference kernel gave (int8_reference). Integer arithmetic is exact on every target and the float input
// quantization is one correctly rounded IEEE division and an exact rounding, so the tolerance is zero: every
// output byte must be identical. Same interface as device_check.hpp (bare_metal.cpp, hosted_main.cpp).
#include <cstdint>

#include "device_data.hpp"
#include "device_model.hpp"
#include "device_reference.hpp"

namespace device_check {

inline constexpr const char* name = "deploy int8";
inline constexpr const char* worst_unit = " steps";

struct result {
  int images = 0, argmax_mismatches = 0, out_of_tolerance = 0, right = 0;
  std::uint32_t worst_ulps = 0;  // largest difference from the reference, in int8 steps
  std::uint32_t exact = 0;       // outputs identical to x86
};

// The self test compares against a corrupted reference (every output moved by one step, every expected class by
// one): it passes only if every check fails.
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
    std::int8_t q[784], out[10];
    device_model::model.quantize_input(device_data::images + i * 784, q);
    device_model::model.predict(q, out);
    int best = 0;
    for (int c = 0; c < 10; ++c) {
      best = out[c] > out[best] ? c : best;
      int ref = device_reference::outputs[i * 10 + c];
      if (self_test) ref = ref == 127 ? 126 : ref + 1;
      const int d = out[c] > ref ? out[c] - ref : ref - out[c];
      r.out_of_tolerance += d != 0;
      r.worst_ulps = std::uint32_t(d) > r.worst_ulps ? std::uint32_t(d) : r.worst_ulps;
      r.exact += d == 0;
    }
    r.argmax_mismatches += best != (device_reference::argmax[i] + (self_test ? 1 : 0)) % 10;
    r.right += best == device_data::labels[i];
    ++r.images;
  }
  return r;
}

inline bool passed(const result& r) {
  if (self_test)
    return r.images == device_data::count && r.argmax_mismatches == r.images && r.out_of_tolerance == r.images * 10;
  return r.images == device_data::count && r.argmax_mismatches == 0 && r.out_of_tolerance == 0 &&
         r.exact == std::uint32_t(r.images * 10);
}

}  // namespace device_check
