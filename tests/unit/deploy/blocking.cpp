// The blocked dense kernel of SIMD hosts gives the same bits as the one-output-at-a-time kernel that
// microcontrollers run (same per-lane multiplies and adds in the same order). Built with -ffp-contract=off
// (tests/unit/deploy/CMakeLists.txt), as the device comparisons are.
#include <algorithm>
#include <bit>
#include <cmath>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <random>
#include <vector>

#include "fnn/deploy/layers.hpp"

namespace {
template <std::size_t In, std::size_t Out>
void check_blocked_equals_scalar(std::uint32_t seed) {
  using L = fnn::deploy::dense<In, Out, fnn::deploy::act::identity>;
  auto p = std::make_unique<typename L::params>();
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto& w : p->weight) w = d(g);
  for (auto& b : p->bias) b = d(g);
  std::vector<float> x(2 * In), y(2 * Out);
  for (auto& v : x) v = d(g);
  L::run(*p, x.data(), y.data(), 2);
  for (std::size_t r = 0; r < 2; ++r)
    for (std::size_t o = 0; o < Out; ++o) {
      const float scalar = p->bias[o] + fnn::deploy::detail::dot<In>(p->weight + o * In, x.data() + r * In);
      BOOST_TEST_INFO("In " << In << " Out " << Out << " row " << r << " output " << o);
      BOOST_TEST(std::bit_cast<std::uint32_t>(y[r * Out + o]) == std::bit_cast<std::uint32_t>(scalar));
    }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(kernels)

BOOST_AUTO_TEST_CASE(blocked_dense_is_bit_identical_to_scalar) {
  BOOST_TEST_MESSAGE("output block on this target: " << fnn::deploy::detail::output_block);
  check_blocked_equals_scalar<1, 9>(1);
  check_blocked_equals_scalar<3, 8>(2);
  check_blocked_equals_scalar<13, 17>(3);
  check_blocked_equals_scalar<784, 256>(4);
  check_blocked_equals_scalar<255, 10>(5);
}

BOOST_AUTO_TEST_SUITE_END()

// deploy's compact erfc (deploy/activations.hpp) against the C library's double erfc, and GELU with it against
// the exact GELU: the bounds its comment states.
BOOST_AUTO_TEST_CASE(compact_erfc_and_gelu_accuracy) {
  double worst_erfc = 0, worst_gelu = 0;
  for (int i = -2000000; i <= 2000000; ++i) {
    const float z = float(i) * 5e-6f;
    worst_erfc = std::max(worst_erfc, std::abs(double(fnn::deploy::act::detail::erfc(z)) - std::erfc(double(z))));
    const double g = 0.5 * double(z) * std::erfc(-double(z) / std::sqrt(2.0));
    worst_gelu = std::max(worst_gelu, std::abs(double(fnn::deploy::act::gelu::f(z)) - g) / (1 + std::abs(g)));
  }
  BOOST_TEST_MESSAGE("compact erfc: worst |error| " << worst_erfc << ", GELU worst error / (1 + |GELU|) " << worst_gelu);
  BOOST_TEST(worst_erfc <= 5.9e-7);
  BOOST_TEST(worst_gelu <= 2.2e-7);
}
