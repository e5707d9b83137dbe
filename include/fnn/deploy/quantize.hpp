#pragma once
// Host side of int8 deploy (deploy/int8.hpp): post-training quantization, the numbers fnn-export --int8 writes.
// Calibration observes the float model's tensors (min / max over a set of inputs); from a range follow the
// tensor's scale and zero point, from a layer's float weights the per-channel int8 weights, int32 biases and
// fixed-point multipliers, from an activation function its 256-entry table. Formats as the TensorFlow Lite int8
// quantization specification states them (see int8.hpp). Throws fnn::value_error on what cannot be quantized.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/deploy/int8.hpp"

namespace fnn::deploy::int8 {

// Round half away from zero (std::round), the rounding of every host-side quantization step.
inline double round_half_away(double v) { return std::round(v); }

// The running range of one tensor over the calibration inputs.
struct range_observer final {
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  void observe(double v) {
    min = v < min ? v : min;
    max = v > max ? v : max;
  }
  template <class It>
  void observe(It first, It last) {
    for (; first != last; ++first) observe(double(*first));
  }
  bool empty() const { return !(min <= max); }
};

// Scale and zero point of an activation tensor with values in [lo, hi]: the range is widened to hold 0 (the
// specification wants 0 exactly representable: zero padding, ReLU's clamp), then spread over the 255 steps of
// [-128, 127]; the zero point is the rounded image of 0, so the represented range is [lo, hi] moved by less than
// half a step. An empty or degenerate range ([0, 0]) gets scale 1.
inline quantization choose_activation_quantization(double lo, double hi, const std::string& what) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi)
    throw value_error(what + ": calibration range [" + std::to_string(lo) + ", " + std::to_string(hi) +
                      "] is not a finite interval");
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  if (hi - lo <= 0) return {1.0f, 0};
  const float scale = float((hi - lo) / 255.0);
  const double zp = round_half_away(-128.0 - lo / double(scale));
  return {scale, std::int32_t(std::clamp(zp, -128.0, 127.0))};
}
inline quantization choose_activation_quantization(const range_observer& r, const std::string& what) {
  if (r.empty()) throw value_error(what + ": no calibration values observed");
  return choose_activation_quantization(r.min, r.max, what);
}

// real * 2^-31 * 2^shift ~ real multiplier: multiplier = round(m * 2^31) for the mantissa m in [0.5, 1) of `real`.
struct quantized_multiplier final {
  std::int32_t multiplier;
  int shift;
};
inline quantized_multiplier quantize_multiplier(double real, const std::string& what) {
  if (!std::isfinite(real) || real < 0)
    throw value_error(what + ": the requantization multiplier " + std::to_string(real) + " is not a finite positive number");
  if (real == 0) return {0, 0};
  int e = 0;
  const double m = std::frexp(real, &e);  // real = m * 2^e, m in [0.5, 1)
  auto q = std::int64_t(round_half_away(m * 2147483648.0));
  if (q == (std::int64_t(1) << 31)) {  // m rounded up to 1.0
    q >>= 1;
    ++e;
  }
  if (e < -31) return {0, 0};  // below 2^-32: every int32 accumulator requantizes to 0
  if (e > 30)
    throw value_error(what + ": the requantization multiplier " + std::to_string(real) +
                      " exceeds 2^30 (an output range far narrower than the input's)");
  return {std::int32_t(q), e};
}

// Symmetric per-output-channel weights: scale[o] = max |w[o, :]| / 127, q = round(w / scale) in [-127, 127].
struct channel_weights final {
  std::vector<std::int8_t> values;  // [out, in]
  std::vector<double> scale;        // [out]
};
inline channel_weights quantize_weights_per_channel(const std::vector<float>& w, std::size_t out, std::size_t in,
                                                    const std::string& what) {
  if (w.size() != out * in) throw value_error(what + ": weight count does not match [out, in]");
  channel_weights r{std::vector<std::int8_t>(w.size()), std::vector<double>(out)};
  for (std::size_t o = 0; o < out; ++o) {
    double m = 0;
    for (std::size_t k = 0; k < in; ++k) {
      const double v = w[o * in + k];
      if (!std::isfinite(v))
        throw value_error(what + ": weight [" + std::to_string(o) + ", " + std::to_string(k) + "] is not finite");
      m = std::max(m, std::fabs(v));
    }
    // An all-zero row: any scale represents it; 1 keeps the multiplier finite.
    const double s = m > 0 ? double(float(m / 127.0)) : 1.0;
    r.scale[o] = s;
    for (std::size_t k = 0; k < in; ++k)
      r.values[o * in + k] = std::int8_t(std::clamp(round_half_away(w[o * in + k] / s), -127.0, 127.0));
  }
  return r;
}

// int32 bias of scale input_scale * weight_scale[o].
inline std::vector<std::int32_t> quantize_bias(const std::vector<float>& b, double input_scale,
                                               const std::vector<double>& weight_scale, const std::string& what) {
  std::vector<std::int32_t> r(b.size());
  for (std::size_t o = 0; o < b.size(); ++o) {
    const double q = round_half_away(double(b[o]) / (input_scale * weight_scale[o]));
    if (!(std::fabs(q) <= 2147483647.0))
      throw value_error(what + ": bias [" + std::to_string(o) + "] = " + std::to_string(b[o]) +
                        " does not fit int32 at scale " + std::to_string(input_scale * weight_scale[o]));
    r[o] = std::int32_t(q);
  }
  return r;
}

// The 256 outputs of f for the 256 inputs of a tensor quantized as `in`, quantized as `out`.
template <class F>
void make_table(F&& f, quantization in, quantization out, std::int8_t* table, const std::string& what) {
  for (int q = -128; q <= 127; ++q) {
    const double x = double(in.scale) * double(q - in.zero_point);
    const double y = double(f(x));
    if (!std::isfinite(y)) throw value_error(what + ": the activation of " + std::to_string(x) + " is not finite");
    const double v = round_half_away(y / double(out.scale)) + out.zero_point;
    table[q + 128] = std::int8_t(std::clamp(v, -128.0, 127.0));
  }
}

// A whole dense layer's int8 params from its float (folded) weights [out, in] and biases, the quantizations of its
// input and output, and whether a ReLU follows (then it is the clamp at the output's image of 0).
struct dense_quantized final {
  std::vector<std::int8_t> weight, shift;
  std::vector<std::int32_t> bias, multiplier;
  std::int32_t input_zero_point = 0, output_zero_point = 0, output_min = -128, output_max = 127;
};
inline dense_quantized quantize_dense(const std::vector<float>& w, const std::vector<float>& b, std::size_t out,
                                      std::size_t in, quantization x, quantization y, bool relu,
                                      const std::string& what) {
  const auto cw = quantize_weights_per_channel(w, out, in, what);
  dense_quantized d;
  d.weight = cw.values;
  d.bias = quantize_bias(b, x.scale, cw.scale, what);
  for (std::size_t o = 0; o < out; ++o) {
    const auto m = quantize_multiplier(double(x.scale) * cw.scale[o] / double(y.scale), what);
    d.multiplier.push_back(m.multiplier);
    d.shift.push_back(std::int8_t(m.shift));
  }
  d.input_zero_point = x.zero_point, d.output_zero_point = y.zero_point;
  d.output_min = relu ? y.zero_point : -128;
  return d;
}

// Copies a dense_quantized into a model's params (a run-time quantized model, as the tests build one).
template <std::size_t In, std::size_t Out>
void fill(const dense_quantized& d, typename dense<In, Out>::params& p) {
  if (d.weight.size() != In * Out || d.bias.size() != Out)
    throw value_error("int8::fill: the quantized layer is not " + std::to_string(In) + " -> " + std::to_string(Out));
  std::copy(d.weight.begin(), d.weight.end(), p.weight);
  std::copy(d.bias.begin(), d.bias.end(), p.bias);
  std::copy(d.multiplier.begin(), d.multiplier.end(), p.multiplier);
  std::copy(d.shift.begin(), d.shift.end(), p.shift);
  p.input_zero_point = d.input_zero_point, p.output_zero_point = d.output_zero_point;
  p.output_min = std::int8_t(d.output_min), p.output_max = std::int8_t(d.output_max);
}

}  // namespace fnn::deploy::int8
