// The deploy model headers alone, built with -fno-exceptions -fno-rtti (tests/unit/deploy/CMakeLists.txt): they
// must not pull iostream, <filesystem>, zlib or xsimd, which a microcontroller build does not have.
#include "fnn/deploy/int8.hpp"
#include "fnn/deploy/model.hpp"

#if defined(_GLIBCXX_IOSTREAM) || defined(_GLIBCXX_FILESYSTEM) || defined(ZLIB_H) || defined(XSIMD_HPP) || \
    defined(_GLIBCXX_VECTOR) || defined(_GLIBCXX_STRING)
#error "fnn: a deploy model header includes a host-only header"
#endif

namespace d = fnn::deploy;
using model_t = d::model<d::static_batch<2>, d::dense<3, 4, d::act::relu>, d::dense<4, 2>>;

constexpr model_t model{{
    {{1, 0, 0, 0, 1, 0, 0, 0, 1, -1, -1, -1}, {0, 0, 0, 0.5f}},
    {{{1, 1, 1, 1, 1, -1, 0, 0}, {0, 1}}, {}},
}};

// int8: in = x - 1 (input zero point 1); hidden = relu-clamped requantize(w . in + b) with multiplier 2^30 and
// shift 0 (x / 2, ties up), then a table that negates; out = the same requantize of the hidden pair's sum.
namespace q8 = fnn::deploy::int8;
using int8_model_t = q8::model<d::static_batch<1>, q8::dense<2, 2>, q8::lookup<2>, q8::dense<2, 1>>;
constexpr int8_model_t int8_model = [] {
  int8_model_t m{{0.5f, 1}, {0.25f, 0}, {}};
  auto& l0 = q8::params_of<0>(m);
  l0 = {{1, 2, -3, 1}, {1, 0}, {1 << 30, 1 << 30}, {0, 0}, 1, -4, -4, 127};
  for (int i = 0; i < 256; ++i) q8::params_of<1>(m).table[i] = std::int8_t(i == 0 ? 127 : 128 - i);
  q8::params_of<2>(m) = {{1, 1}, {0}, {1 << 30}, {0}, 0, 0, -128, 127};
  return m;
}();

// Group norm, 2 groups of 2: x = (1, 3 | 10, 14) has group means 2 and 12, variances 1 and 4, so
// y = gamma * (-1, 1 | -1, 1) * s + beta with s = 1 / sqrt(1 + 1e-5) and 2 / sqrt(4 + 1e-5).
using group_norm_model_t = d::model<d::static_batch<1>, d::group_norm<4, 2>>;
constexpr group_norm_model_t group_norm_model{{{{1, 2, 1, 1}, {0, 0, 0.5f, 0}}, {}}};

int main() {
  {
    const float x[4] = {1, 3, 10, 14};
    float y[4] = {};
    group_norm_model.predict(x, y);
    const float s1 = 0.99999500f, s2 = 0.99999875f;  // 1 / sqrt(1.00001), 2 / sqrt(4.00001)
    const float want[4] = {-s1, 2 * s1, 0.5f - s2, s2};
    for (int i = 0; i < 4; ++i)
      if (!(y[i] - want[i] < 1e-6f && want[i] - y[i] < 1e-6f)) return 5;
  }
  {
    // x = (5, 3) -> in (4, 2): (4 + 4 + 1) / 2 = 4.5 -> 5, then -4 = 1; (-12 + 2) / 2 = -5 -> -4 (-9 clamped to -4)
    // -> table: -1, 4; out (-1 + 4) / 2 = 1.5 -> 2.
    const std::int8_t x[2] = {5, 3};
    std::int8_t y[1] = {0};
    int8_model.predict(x, y);
    if (y[0] != 2) return 3;
    float in[2] = {2.25f, -0.25f}, out[1];
    std::int8_t q[2];
    int8_model.quantize_input(in, q);  // 4.5 -> 5 (+1) = 6, -0.5 -> -1 (+1) = 0
    int8_model.dequantize_output(y, out);
    if (q[0] != 6 || q[1] != 0 || out[0] != 0.5f) return 4;
  }
  const float x[2 * 3] = {1, 2, 3, -1, -2, -3};
  float y[2 * 2] = {};
  model.predict(x, y);
  // Row 0: hidden relu(1, 2, 3, -5.5) = (1, 2, 3, 0) -> (6, 0); row 1: hidden (0, 0, 0, 6.5) -> (6.5, 1).
  const float want[4] = {6, 0, 6.5f, 1};
  for (int i = 0; i < 4; ++i)
    if (y[i] != want[i]) return 1;
  return model.predict_rows(x, 3, y) == d::status::batch_too_large ? 0 : 2;
}
