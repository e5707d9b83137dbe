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

// The target's dense kernel (SMLAD on Cortex-M4, AVX2 on x86, SDOT on AArch64 with dotprod, the reference elsewhere) against run_reference on
// pseudo-random layers whose widths hit the kernels' tails, with extreme weights and edge zero points. Returns the
// number of differing outputs.
template <std::size_t In, std::size_t Out>
int kernel_mismatches_of(std::uint32_t& s) {
  using layer = fnn::deploy::int8::dense<In, Out>;
  const auto next = [&s] { return s = s * 1664525u + 1013904223u, std::int8_t(s >> 24); };
  static typename layer::params p;  // static: no large frame on a 16 KB microcontroller
  int bad = 0;
  const std::int32_t zps[] = {-128, -1, 0, 1, 127, 37};
  for (int trial = 0; trial < 8; ++trial) {
    for (auto& w : p.weight) {
      const std::int8_t v = next();
      w = trial % 4 == 0 ? std::int8_t(v < 0 ? -127 : 127) : v == -128 ? std::int8_t(-127) : v;
    }
    for (std::size_t o = 0; o < Out; ++o) {
      p.bias[o] = std::int32_t(next()) * 300;
      p.multiplier[o] = std::int32_t(0x40000000u | (std::uint32_t(next()) << 20) | 12345u);
      p.shift[o] = std::int8_t(-4 - (next() & 7));
    }
    p.output_zero_point = next(), p.output_min = -128, p.output_max = 127;
    std::int8_t x[2 * In], fast[2 * Out], ref[2 * Out];
    for (auto& v : x) v = trial % 8 == 1 ? std::int8_t(next() < 0 ? -128 : 127) : next();
    for (std::int32_t zp : zps) {
      p.input_zero_point = zp;
      layer::run(p, x, fast, 2);
      layer::run_reference(p, x, ref, 2);
      for (std::size_t i = 0; i < 2 * Out; ++i) bad += fast[i] != ref[i];
      // Sensitive to one unit of the accumulator: the bias cancels the reference's sum of the first row (up to a
      // small offset) and the multiplier is exactly 1 (2^30 * 2^1 / 2^31), so the output is the sum itself.
      for (std::size_t o = 0; o < Out; ++o) {
        p.bias[o] = std::int32_t(next() % 100) -
                    fnn::deploy::int8::detail::accumulate<In>(p.weight + o * In, x, zp, 0);
        p.multiplier[o] = 1 << 30, p.shift[o] = 1;
      }
      layer::run(p, x, fast, 1);
      layer::run_reference(p, x, ref, 1);
      for (std::size_t i = 0; i < Out; ++i) bad += fast[i] != ref[i];
    }
  }
  return bad;
}
inline int kernel_mismatches() {
  std::uint32_t s = 12345u;
  return kernel_mismatches_of<37, 5>(s) + kernel_mismatches_of<3, 2>(s) + kernel_mismatches_of<16, 4>(s) +
         kernel_mismatches_of<65, 9>(s);
}

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
  // The kernel comparison runs here, after the timed run(): a faster kernel that differs fails the test.
  return r.images == device_data::count && r.argmax_mismatches == 0 && r.out_of_tolerance == 0 &&
         r.exact == std::uint32_t(r.images * 10) && kernel_mismatches() == 0;
}

}  // namespace device_check
