// int8 deploy: the requantization arithmetic against an independent formulation of the same specification (exact
// 128-bit integer floor division instead of the nudge-and-truncate of int8.hpp), on hand-picked edge cases (ties,
// negative values, saturation, shifts 0 and 31, left shifts) and on random values skewed towards ties; the whole
// model against a reference written from the specification's formulas; the host-side quantization (scales,
// multipliers, tables); fnn-export --int8's mapping and errors in-process (the compiled headers run in
// tests/unit/deploy/devices).
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fnn/deploy/int8.hpp"
#include "fnn/deploy/quantize.hpp"
#include "fnn/fnn.hpp"
#include "fnn/network/describe.hpp"
#include "helpers.hpp"
#include "int8_exporter.hpp"

namespace q8 = fnn::deploy::int8;

namespace {

__extension__ typedef __int128 i128;  // GCC and Clang on 64-bit hosts; exact for every product here
constexpr std::int64_t two31 = std::int64_t(1) << 31;

// floor(n / 2^k) for any sign, k < 64, in exact 128-bit arithmetic.
i128 floor_div_pot(i128 n, int k) {
  const i128 d = i128(1) << k;
  return n >= 0 ? n / d : -((-n + d - 1) / d);
}
std::int32_t saturate(i128 v) {
  return std::int32_t(v > INT32_MAX ? i128(INT32_MAX) : v < INT32_MIN ? i128(INT32_MIN) : v);
}

// The specification's fixed-point multiply: a * b / 2^31 rounded to nearest, ties towards +infinity, saturated.
std::int32_t ref_high_mul(std::int32_t a, std::int32_t b) { return saturate(floor_div_pot(i128(a) * b + (i128(1) << 30), 31)); }
// Its rounding right shift: x / 2^e rounded to nearest, ties away from zero (on the magnitude, then the sign).
std::int32_t ref_divide_pot(std::int32_t x, int e) {
  const i128 m = x < 0 ? -i128(x) : i128(x);
  const i128 r = e == 0 ? m : floor_div_pot(m + (i128(1) << (e - 1)), e);
  return std::int32_t(x < 0 ? -r : r);
}
std::int32_t ref_requantize(std::int64_t acc, std::int32_t m, int shift) {
  const std::int32_t x = saturate(i128(acc) * (i128(1) << (shift > 0 ? shift : 0)));
  return ref_divide_pot(ref_high_mul(x, m), shift < 0 ? -shift : 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(int8_arithmetic)

BOOST_AUTO_TEST_CASE(high_mul_edge_cases) {
  // Ties: 3 * 2^30 / 2^31 = 1.5 -> 2 and -1.5 -> -1 (half up); just off the tie on either side.
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(3, 1 << 30) == 2);
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1);
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(1, 1 << 30) == 1);    // 0.5 -> 1
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0);   // -0.5 -> 0
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(-1, (1 << 30) + 1) == -1);
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(1, (1 << 30) - 1) == 0);
  // Saturation: the one overflowing product, and its neighbours that do not overflow.
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX);
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX);
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(INT32_MAX, INT32_MAX) == INT32_MAX - 1);
  BOOST_TEST(q8::saturating_rounding_doubling_high_mul(0, INT32_MIN) == 0);
  const std::int32_t a[] = {0, 1, -1, 2, -2, 3, -3, 1 << 30, -(1 << 30), INT32_MAX, INT32_MIN, INT32_MIN + 1, 12345, -98765};
  for (std::int32_t x : a)
    for (std::int32_t y : a) {
      BOOST_TEST_INFO(x << " * " << y);
      BOOST_TEST(q8::saturating_rounding_doubling_high_mul(x, y) == ref_high_mul(x, y));
    }
}

BOOST_AUTO_TEST_CASE(divide_by_power_of_two_edge_cases) {
  BOOST_TEST(q8::rounding_divide_by_pot(3, 1) == 2);    // 1.5 -> 2
  BOOST_TEST(q8::rounding_divide_by_pot(-3, 1) == -2);  // -1.5 -> -2: away from zero, not up
  BOOST_TEST(q8::rounding_divide_by_pot(-1, 1) == -1);
  BOOST_TEST(q8::rounding_divide_by_pot(-5, 2) == -1);  // -1.25
  BOOST_TEST(q8::rounding_divide_by_pot(-6, 2) == -2);  // -1.5
  BOOST_TEST(q8::rounding_divide_by_pot(-7, 2) == -2);  // -1.75
  for (std::int32_t x : {0, 1, -1, 7, -7, INT32_MAX, INT32_MIN}) BOOST_TEST(q8::rounding_divide_by_pot(x, 0) == x);
  BOOST_TEST(q8::rounding_divide_by_pot(INT32_MIN, 31) == -1);
  BOOST_TEST(q8::rounding_divide_by_pot(INT32_MAX, 31) == 1);
  BOOST_TEST(q8::rounding_divide_by_pot(1 << 30, 31) == 1);      // 0.5 -> 1
  BOOST_TEST(q8::rounding_divide_by_pot(-(1 << 30), 31) == -1);  // -0.5 -> -1
  BOOST_TEST(q8::rounding_divide_by_pot((1 << 30) - 1, 31) == 0);
  BOOST_TEST(q8::rounding_divide_by_pot(-(1 << 30) + 1, 31) == 0);
  for (int e = 0; e <= 31; ++e)
    for (std::int64_t base : {std::int64_t(0), std::int64_t(1) << e >> 1, (std::int64_t(1) << e) * 3 / 2})
      for (std::int64_t d : {-1, 0, 1})
        for (int s : {1, -1}) {
          const std::int64_t v = s * (base + d);
          if (v < INT32_MIN || v > INT32_MAX) continue;
          BOOST_TEST_INFO(v << " / 2^" << e);
          BOOST_TEST(q8::rounding_divide_by_pot(std::int32_t(v), e) == ref_divide_pot(std::int32_t(v), e));
        }
}

BOOST_AUTO_TEST_CASE(requantize_random_and_ties) {
  std::mt19937_64 g(7);
  std::uniform_int_distribution<std::int32_t> any(INT32_MIN, INT32_MAX), mult(1 << 30, INT32_MAX), shift(-31, 8);
  long failures = 0;
  for (int i = 0; i < 400000; ++i) {
    std::int32_t x = any(g) >> (g() % 32);
    const std::int32_t m = i % 7 == 0 ? (1 << 30) : mult(g);  // 2^30: every product is a multiple of 1/2
    const int s = shift(g);
    if (i % 5 == 0 && s < 0) x = std::int32_t((std::int64_t(g() % 4096) - 2048) * (std::int64_t(1) << (-s - 1)));  // tie-rich
    failures += q8::multiply_by_quantized_multiplier(x, m, s) != ref_requantize(x, m, s);
  }
  BOOST_TEST(failures == 0);
  // Left shifts saturate instead of overflowing.
  BOOST_TEST(q8::multiply_by_quantized_multiplier(INT32_MAX / 2, INT32_MAX, 4) == ref_requantize(INT32_MAX / 2, INT32_MAX, 4));
  BOOST_TEST(q8::multiply_by_quantized_multiplier(INT32_MIN / 2, 1 << 30, 3) == -(1 << 30));
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the model against the specification's formulas ------------------------------------------------------------
namespace {

using model_t = q8::model<fnn::deploy::static_batch<3>, q8::dense<37, 18>, q8::lookup<18>, q8::maxout<18, 3>,
                          q8::dense<6, 5>>;

template <std::size_t In, std::size_t Out>
void random_dense(typename q8::dense<In, Out>::params& p, std::mt19937& g, bool relu) {
  std::uniform_int_distribution<int> w(-127, 127), zp(-128, 127), sh(-14, -4);
  std::uniform_int_distribution<std::int32_t> m(1 << 30, INT32_MAX), b(-40000, 40000);
  for (auto& v : p.weight) v = std::int8_t(w(g));
  for (std::size_t o = 0; o < Out; ++o) p.bias[o] = b(g), p.multiplier[o] = m(g), p.shift[o] = std::int8_t(sh(g));
  p.input_zero_point = zp(g), p.output_zero_point = zp(g);
  p.output_min = std::int8_t(relu ? p.output_zero_point : -128), p.output_max = 127;
}

// y[o] = clamp(zp_out + requantize(bias[o] + sum_k (x[k] - zp_in) w[o, k]), min, max), accumulated in int64.
template <std::size_t In, std::size_t Out>
std::vector<int> ref_dense(const typename q8::dense<In, Out>::params& p, const std::vector<int>& x) {
  std::vector<int> y(Out);
  for (std::size_t o = 0; o < Out; ++o) {
    std::int64_t acc = p.bias[o];
    for (std::size_t k = 0; k < In; ++k) acc += std::int64_t(x[k] - p.input_zero_point) * p.weight[o * In + k];
    const std::int64_t v = std::int64_t(ref_requantize(acc, p.multiplier[o], p.shift[o])) + p.output_zero_point;
    y[o] = int(std::clamp<std::int64_t>(v, p.output_min, p.output_max));
  }
  return y;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(int8_model)

BOOST_AUTO_TEST_CASE(sizes_are_compile_time) {
  static_assert(model_t::input_size == 3 * 37 && model_t::output_size == 3 * 5);
  static_assert(model_t::parameter_count == 37 * 18 + 18 + 256 + 6 * 5 + 5);
  static_assert(model_t::scratch_bytes == 3 * 18 + 3 * 18);  // buffers of parity 0 (lookup, dense) and 1 (maxout)
  static_assert(model_t::weight_bytes >= 37 * 18 + 18 * 9 + 256 + 30 + 5 * 9);
  static_assert(noexcept(std::declval<const model_t&>().predict(nullptr, nullptr)));
  BOOST_TEST(true);
}

BOOST_AUTO_TEST_CASE(predict_matches_the_specification) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 g(seed);
    auto m = std::make_unique<model_t>();
    random_dense<37, 18>(q8::params_of<0>(*m), g, seed % 2 == 0);
    for (auto& v : q8::params_of<1>(*m).table) v = std::int8_t(int(g() % 256) - 128);
    random_dense<6, 5>(q8::params_of<3>(*m), g, false);
    std::vector<std::int8_t> x(model_t::input_size), y(model_t::output_size);
    for (auto& v : x) v = std::int8_t(int(g() % 256) - 128);
    m->predict(x.data(), y.data());
    for (std::size_t r = 0; r < 3; ++r) {
      std::vector<int> h(x.begin() + std::ptrdiff_t(r * 37), x.begin() + std::ptrdiff_t(r * 37 + 37));
      h = ref_dense<37, 18>(q8::params_of<0>(*m), h);
      for (int& v : h) v = q8::params_of<1>(*m).table[v + 128];
      std::vector<int> mo(6);
      for (std::size_t j = 0; j < 6; ++j) mo[j] = std::max({h[3 * j], h[3 * j + 1], h[3 * j + 2]});
      const auto want = ref_dense<6, 5>(q8::params_of<3>(*m), mo);
      for (std::size_t o = 0; o < 5; ++o) {
        BOOST_TEST_INFO("seed " << seed << " row " << r << " output " << o);
        BOOST_TEST(int(y[r * 5 + o]) == want[o]);
      }
    }
    BOOST_TEST((m->predict_rows(x.data(), 4, y.data()) == fnn::deploy::status::batch_too_large));
    BOOST_TEST((m->predict_rows(x.data(), 0, y.data()) == fnn::deploy::status::empty_batch));
    BOOST_TEST((m->predict_rows(nullptr, 1, y.data()) == fnn::deploy::status::null_pointer));
  }
}

// The target's faster dense kernel (AVX2 on an x86 host built with -march=native, SDOT, SMLAD) against
// run_reference on random layers whose widths hit every tail of the 16-wide (and 4-wide) loops, extreme weights,
// edge zero points, several rows. Where there is no faster kernel, run is run_reference and this passes trivially
// (the message says which).
template <std::size_t In, std::size_t Out>
void compare_kernels(std::mt19937& g) {
  using layer = q8::dense<In, Out>;
  auto p = std::make_unique<typename layer::params>();
  random_dense<In, Out>(*p, g, g() % 2 == 0);
  if (g() % 3 == 0)
    for (auto& v : p->weight) v = v < 0 ? -127 : 127;
  const std::int32_t zps[] = {-128, 127, 0, p->input_zero_point};
  for (std::int32_t zp : zps) {
    p->input_zero_point = zp;
    std::vector<std::int8_t> x(3 * In), fast(3 * Out), ref(3 * Out);
    for (auto& v : x) v = std::int8_t(int(g() % 256) - 128);
    if (zp == 127) std::fill(x.begin(), x.end(), std::int8_t(-128));  // |x - zp| = 255, the largest
    layer::run(*p, x.data(), fast.data(), 3);
    layer::run_reference(*p, x.data(), ref.data(), 3);
    BOOST_TEST_INFO("dense<" << In << ", " << Out << ">, input zero point " << zp);
    BOOST_TEST(fast == ref);
    // One unit of the accumulator shows: the bias cancels the reference sum of row 0 up to a small offset, and
    // the multiplier is exactly 1 (2^30 * 2^1 / 2^31).
    auto exact = std::make_unique<typename layer::params>(*p);
    for (std::size_t o = 0; o < Out; ++o) {
      exact->bias[o] = std::int32_t(g() % 100) - q8::detail::accumulate<In>(p->weight + o * In, x.data(), zp, 0);
      exact->multiplier[o] = 1 << 30, exact->shift[o] = 1;
    }
    layer::run(*exact, x.data(), fast.data(), 1);
    layer::run_reference(*exact, x.data(), ref.data(), 1);
    BOOST_TEST(std::equal(fast.begin(), fast.begin() + Out, ref.begin()));
  }
}

BOOST_AUTO_TEST_CASE(fast_kernel_matches_the_reference) {
  BOOST_TEST_MESSAGE("int8 dense kernel: " << (q8::detail::has_avx2      ? "AVX2"
                                               : q8::detail::has_smlad   ? "SMLAD"
                                               : q8::detail::has_dotprod ? "SDOT"
                                                                         : "the reference (no faster kernel here)"));
  std::mt19937 g(21);
  for (int rep = 0; rep < 3; ++rep) {
    compare_kernels<1, 1>(g);
    compare_kernels<15, 3>(g);
    compare_kernels<16, 4>(g);
    compare_kernels<17, 5>(g);
    compare_kernels<33, 9>(g);
    compare_kernels<100, 7>(g);
    compare_kernels<784, 12>(g);
  }
}

BOOST_AUTO_TEST_CASE(quantize_input_rounds_half_away_and_clamps) {
  model_t m{};
  m.input = {0.5f, 3};
  const float x[] = {0.25f, -0.25f, 0.2499999f, -0.2499999f, 0.75f, -0.75f, 0.0f, 1e9f, -1e9f, 63.0f, -65.75f, NAN};
  const int want[] = {4, 2, 3, 3, 5, 1, 3, 127, -128, 127, -128, -128};
  std::int8_t q[std::size(x)];
  m.quantize_input(x, q, std::size(x));
  for (std::size_t i = 0; i < std::size(x); ++i) {
    BOOST_TEST_INFO("x = " << x[i]);
    BOOST_TEST(int(q[i]) == want[i]);
  }
  // Against std::lround on a sweep of scales and values.
  std::mt19937 g(3);
  std::uniform_real_distribution<float> u(-300.0f, 300.0f);
  for (int i = 0; i < 20000; ++i) {
    m.input = {std::ldexp(1.0f, int(g() % 9) - 4) * (1.0f + float(g() % 100) / 100.0f), int(g() % 256) - 128};
    const float v = i % 3 ? u(g) : float(int(g() % 400) - 200) * 0.5f * m.input.scale;  // ties
    std::int8_t got;
    m.quantize_input(&v, &got, 1);
    const long want_q = std::clamp<long>(std::lround(v / m.input.scale) + m.input.zero_point, -128, 127);
    BOOST_TEST_INFO("x " << v << " scale " << m.input.scale);
    BOOST_TEST(long(got) == want_q);
  }
  m.output = {0.25f, -7};
  const std::int8_t o[] = {-7, -8, 127, -128};
  float y[4];
  m.dequantize_output(o, y, 4);
  BOOST_TEST(y[0] == 0.0f);
  BOOST_TEST(y[1] == -0.25f);
  BOOST_TEST(y[2] == 33.5f);
  BOOST_TEST(y[3] == -30.25f);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- host-side quantization ------------------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(int8_quantize)

BOOST_AUTO_TEST_CASE(activation_ranges_hold_zero_exactly) {
  const auto a = q8::choose_activation_quantization(0.0, 1.0, "t");
  BOOST_TEST(a.scale == float(1.0 / 255));
  BOOST_TEST(a.zero_point == -128);
  const auto b = q8::choose_activation_quantization(0.5, 2.0, "t");  // widened to [0, 2]
  BOOST_TEST(b.zero_point == -128);
  const auto c = q8::choose_activation_quantization(-3.0, -1.0, "t");  // widened to [-3, 0]
  BOOST_TEST(c.zero_point == 127);
  for (auto [lo, hi] : {std::pair{-1.3, 4.7}, {-0.01, 9.0}, {-7.0, 0.2}}) {
    const auto q = q8::choose_activation_quantization(lo, hi, "t");
    BOOST_TEST_INFO(lo << " .. " << hi);
    BOOST_TEST(q.scale * (-128 - q.zero_point) <= lo + 0.5 * q.scale);
    BOOST_TEST(q.scale * (127 - q.zero_point) >= hi - 0.5 * q.scale);
  }
  BOOST_CHECK_THROW(q8::choose_activation_quantization(q8::range_observer{}, "empty"), fnn::value_error);
  BOOST_CHECK_THROW(q8::choose_activation_quantization(0.0, INFINITY, "inf"), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(multipliers_are_q31_mantissas) {
  std::mt19937 g(11);
  std::uniform_real_distribution<double> e(-30.0, 20.0);
  for (int i = 0; i < 5000; ++i) {
    const double real = std::exp2(e(g));
    const auto m = q8::quantize_multiplier(real, "t");
    BOOST_TEST_INFO(real);
    BOOST_TEST(m.multiplier >= (1 << 30));
    BOOST_TEST(std::fabs(std::ldexp(double(m.multiplier), m.shift - 31) - real) <= real * 0x1p-31);
  }
  const auto one = q8::quantize_multiplier(1.0 - 0x1p-40, "t");  // the mantissa rounds up to 1: halved, shift + 1
  BOOST_TEST(one.multiplier == (1 << 30));
  BOOST_TEST(one.shift == 1);
  BOOST_TEST(q8::quantize_multiplier(0x1p-40, "t").multiplier == 0);
  BOOST_CHECK_THROW(q8::quantize_multiplier(0x1p40, "t"), fnn::value_error);
  BOOST_CHECK_THROW(q8::quantize_multiplier(-1.0, "t"), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(weights_per_channel_and_tables) {
  const std::vector<float> w = {0.5f, -1.0f, 0.25f, 0, 0, 0, 2.0f, 1.0f, -0.02f};
  const auto q = q8::quantize_weights_per_channel(w, 3, 3, "t");
  BOOST_TEST(q.values[1] == -127);  // each row's largest magnitude maps to 127
  BOOST_TEST(q.values[2] == 32);    // 0.25 * 127 = 31.75
  BOOST_TEST(q.values[6] == 127);
  BOOST_TEST(q.values[8] == -1);    // -0.02 / (2 / 127) = -1.27
  BOOST_TEST(q.values[3] == 0);     // the zero row stays zero
  BOOST_TEST(q.scale[1] == 1.0);
  std::vector<std::int8_t> table(256);
  q8::make_table([](double x) { return x; }, {0.1f, 5}, {0.1f, 5}, table.data(), "identity");
  for (int i = 0; i < 256; ++i) BOOST_TEST(int(table[std::size_t(i)]) == i - 128);
  q8::make_table([](double x) { return x > 0 ? x : 0.0; }, {0.1f, 5}, {0.02f, -128}, table.data(), "relu");
  BOOST_TEST(int(table[5 + 128]) == -128);
  BOOST_TEST(int(table[6 + 128]) == -123);  // 0.1 / 0.02 = 5 steps above the zero point
  BOOST_TEST(int(table[255]) == 127);       // saturates
  BOOST_CHECK_THROW(q8::quantize_bias({1e9f}, 1e-3, {1e-3}, "t"), fnn::value_error);
}

// quantize_dense + fill end to end: the int8 layer's dequantized outputs stay within the error the three
// roundings allow (half a step of the output, the input's half step through |w|, the weights' half steps through
// |x|) of the float layer; with relu the clamp keeps them >= 0.
BOOST_AUTO_TEST_CASE(quantized_dense_tracks_the_float_layer) {
  constexpr std::size_t In = 24, Out = 6, rows = 50;
  std::mt19937 g(5);
  std::normal_distribution<float> n(0.0f, 0.5f);
  std::uniform_real_distribution<float> u(-1.0f, 2.0f);
  std::vector<float> w(Out * In), b(Out), x(rows * In), y(rows * Out);
  for (auto& v : w) v = n(g);
  for (auto& v : b) v = n(g);
  for (auto& v : x) v = u(g);
  q8::range_observer rx, ry;
  rx.observe(x.begin(), x.end());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < Out; ++o) {
      double s = b[o];
      for (std::size_t k = 0; k < In; ++k) s += double(w[o * In + k]) * x[r * In + k];
      y[r * Out + o] = float(s);
      ry.observe(s);
    }
  for (bool relu : {false, true}) {
    const auto qx = q8::choose_activation_quantization(rx, "x");
    const auto qy = relu ? q8::choose_activation_quantization(0.0, ry.max, "y")
                         : q8::choose_activation_quantization(ry, "y");
    const auto d = q8::quantize_dense(w, b, Out, In, qx, qy, relu, "t");
    using m_t = q8::model<fnn::deploy::static_batch<1>, q8::dense<In, Out>>;
    auto m = std::make_unique<m_t>();
    m->input = qx, m->output = qy;
    q8::fill<In, Out>(d, q8::params_of<0>(*m));
    const auto cw = q8::quantize_weights_per_channel(w, Out, In, "t");
    for (std::size_t r = 0; r < rows; ++r) {
      std::int8_t xq[In], yq[Out];
      float got[Out];
      m->quantize_input(x.data() + r * In, xq);
      m->predict(xq, yq);
      m->dequantize_output(yq, got);
      for (std::size_t o = 0; o < Out; ++o) {
        double bound = 0.5 * qy.scale + 1e-6;
        for (std::size_t k = 0; k < In; ++k)
          bound += 0.5 * qx.scale * std::fabs(w[o * In + k]) + 0.5 * cw.scale[o] * (std::fabs(x[r * In + k]) + qx.scale);
        const double want = relu ? std::max(0.0f, y[r * Out + o]) : y[r * Out + o];
        BOOST_TEST_INFO("relu " << relu << " row " << r << " output " << o << ": int8 " << got[o] << ", float " << want);
        BOOST_TEST(std::fabs(got[o] - want) <= bound);
        if (relu) BOOST_TEST(got[o] >= 0.0f);
      }
    }
  }
  BOOST_CHECK_THROW((q8::fill<In, Out + 1>(q8::quantize_dense(w, b, Out, In, {0.1f, 0}, {0.1f, 0}, false, "t"),
                                           *std::make_unique<q8::dense<In, Out + 1>::params>())),
                    fnn::value_error);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- fnn-export --int8, in-process ---------------------------------------------------------------------------
namespace {

template <class Net>
struct int8_checkpoint {
  std::filesystem::path path;
  fnn::io::safetensors_file file;
  explicit int8_checkpoint(const std::string& name) {
    path = std::filesystem::temp_directory_path() / ("fnn_deploy_int8_" + std::to_string(::getpid()) + name);
    Net net{fnn::seed{4}};
    fnn_deploy_test::randomize(net, 5);
    fnn::io::save_model(path, net, {{"fnn.layers", fnn::layers_text<Net>()}});
    file = fnn::io::read_safetensors(path);
  }
  ~int8_checkpoint() { std::filesystem::remove(path); }
};

fnn_export::options with_rows(std::size_t in, std::size_t rows) {
  fnn_export::options o;
  o.int8 = true;
  o.calibration_rows = fnn_deploy_test::random_input<float>(in * rows, 9);
  return o;
}

std::string int8_error(const fnn::io::safetensors_file& f, const fnn_export::options& o) {
  try {
    (void)fnn_export::export_int8_header(f, o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(int8_export)

using mapped_net = fnn::sequential<fnn::input<13>, fnn::dense<17>, fnn::batch_norm, fnn::leaky_relu<0.07>,
                                   fnn::dropout<0.2>, fnn::dense<12>, fnn::relu, fnn::dense<12>, fnn::prelu,
                                   fnn::maxout<3>, fnn::dense<5>>;

BOOST_AUTO_TEST_CASE(maps_each_layer_and_is_deterministic) {
  int8_checkpoint<mapped_net> c("mapped");
  const auto o = with_rows(13, 50);
  const std::string h = fnn_export::export_int8_header(c.file, o);
  BOOST_TEST(h == fnn_export::export_int8_header(c.file, o));
  const std::string want = "fnn::deploy::int8::model<fnn::deploy::static_batch<1>,\n"
                           "    fnn::deploy::int8::dense<13, 17>,\n    fnn::deploy::int8::lookup<17>,\n"
                           "    fnn::deploy::int8::dense<17, 12>,\n    fnn::deploy::int8::dense<12, 12>,\n"
                           "    fnn::deploy::int8::lookup<12>,\n    fnn::deploy::int8::maxout<12, 3>,\n"
                           "    fnn::deploy::int8::dense<4, 5>>;";
  BOOST_TEST_INFO(h.substr(0, 1500));
  BOOST_TEST(h.find(want) != std::string::npos);
  BOOST_TEST(h.find("(layer 4, relu 5), relu as the clamp") != std::string::npos);
  BOOST_TEST(h.find("calibrated on 50 rows given in-process") != std::string::npos);
  auto other = o;
  other.calibration_rows[0] += 50.0f;  // a wider input range: another input scale, another header
  BOOST_TEST(h != fnn_export::export_int8_header(c.file, other));
}

BOOST_AUTO_TEST_CASE(refuses_what_has_no_int8_form) {
  using ln_net = fnn::sequential<fnn::input<6>, fnn::dense<8>, fnn::layer_norm, fnn::dense<3>>;
  int8_checkpoint<ln_net> ln("ln");
  const std::string e = int8_error(ln.file, with_rows(6, 4));
  BOOST_TEST_INFO(e);
  BOOST_TEST(e.find("layer 1 (layer_norm) has no int8 form") != std::string::npos);
  using gn_net = fnn::sequential<fnn::input<6>, fnn::dense<8>, fnn::relu, fnn::group_norm<2>, fnn::dense<3>>;
  int8_checkpoint<gn_net> gn("gn");
  const std::string g = int8_error(gn.file, with_rows(6, 4));
  BOOST_TEST_INFO(g);
  BOOST_TEST(g.find("layer 2 (group_norm) has no int8 form") != std::string::npos);
  using bn_net = fnn::sequential<fnn::input<6>, fnn::batch_norm, fnn::dense<3>>;
  int8_checkpoint<bn_net> bn("bn");
  BOOST_TEST(int8_error(bn.file, with_rows(6, 4)).find("layer 0 (batch_norm) follows no dense layer") !=
             std::string::npos);
  int8_checkpoint<mapped_net> c("errors");
  auto none = with_rows(13, 4);
  none.calibration_rows.clear();
  BOOST_TEST(int8_error(c.file, none).find("--int8 needs calibration inputs") != std::string::npos);
  auto ragged = with_rows(13, 4);
  ragged.calibration_rows.pop_back();
  BOOST_TEST(int8_error(c.file, ragged).find("51 values are not whole rows of 13") != std::string::npos);
  auto images = with_rows(13, 4);
  images.calibration_rows.clear();
  images.calibration_data = "/nonexistent/fnn/data";
  BOOST_TEST(int8_error(c.file, images).find("/nonexistent/fnn/data") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
