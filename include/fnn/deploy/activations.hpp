#pragma once
// deploy's element-wise activations: scalar float through <cmath> only. The core's fnn::act::*_fn::f are written
// over simd:: helpers (fnn/simd/math.hpp includes xsimd, which has no scalar batch on a target without SIMD), so
// deploy has its own, with the same formulas and the same branch conventions (x > 0 / x >= 0, NaN to the else
// branch) as the core's scalar path. Each is applied inside the loop of the layer before it.
#include <cmath>

namespace fnn::deploy::act {

namespace detail {
// erfc in a dozen float operations and one expf: the formula 7.1.26 of Abramowitz & Stegun (erf to 1.5e-7
// absolute), reflected for negative z. newlib's erfcf comes in one object with erff, 2 KB of Cortex-M4F code,
// as much as all the rest of the inference code. Measured over [-10, 10] in steps of 5e-6: |error| <= 5.9e-7
// against double erfc (float rounding included), and GELU within 2.2e-7 * (1 + |GELU(x)|) of the exact one.
inline float erfc(float z) noexcept {
  const float a = std::fabs(z);
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float p =
      t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float r = p * std::exp(-a * a);
  return z >= 0.0f ? r : 2.0f - r;
}
}  // namespace detail

struct identity final {
  static constexpr float f(float x) noexcept { return x; }
};

struct relu final {
  static float f(float x) noexcept { return x > 0.0f ? x : 0.0f; }
};

template <double Slope>
struct leaky_relu final {
  static float f(float x) noexcept { return x > 0.0f ? x : float(Slope) * x; }
};

template <double Alpha>
struct elu final {
  static float f(float x) noexcept { return x > 0.0f ? x : float(Alpha) * std::expm1(x); }
};

// Klambauer et al. (2017) constants, as torch.nn.SELU and fnn::act::selu_fn.
struct selu final {
  static constexpr double alpha = 1.6732632423543772848170429916717;
  static constexpr double scale = 1.0507009873554804934193349852946;
  static float f(float x) noexcept { return x > 0.0f ? float(scale) * x : float(scale * alpha) * std::expm1(x); }
};

struct sigmoid final {
  // exp(-|x|) never overflows; the two branches are the two halves of the logistic function.
  static float f(float x) noexcept {
    const float e = std::exp(-std::fabs(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
  }
};

struct tanh final {
  static float f(float x) noexcept { return std::tanh(x); }
};

// GELU, x * Phi(x) (torch.nn.GELU()), with the compact erfc above.
struct gelu final {
  static float f(float x) noexcept { return 0.5f * x * detail::erfc(-x * float(0.70710678118654752440)); }
};

// tanh approximation as x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3) (torch.nn.GELU(approximate="tanh")).
struct gelu_tanh final {
  static float f(float x) noexcept {
    return x * sigmoid::f(float(2 * 0.79788456080286535588) * (x + float(0.044715) * x * x * x));
  }
};

// Swish / SiLU.
struct swish final {
  static float f(float x) noexcept { return x * sigmoid::f(x); }
};

}  // namespace fnn::deploy::act
