// NaN through the optimizers and clipping, as in torch.optim / torch.nn.utils: a NaN gradient gives a NaN
// weight (never +-inf or +-clip_value), a NaN global norm makes every update NaN, and the vector body of each
// loop agrees with its scalar tail. The arrays are 37 long so that NaN sits in full registers and in the tail.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "fnn/core/tensor.hpp"
#include "fnn/expr/assign.hpp"
#include "fnn/optim/optim.hpp"

namespace opt = fnn::optim;
namespace ex = fnn::expr;

namespace {

constexpr std::size_t n = 37;
const std::size_t nan_at[] = {0, 20, 36};  // first register, a later one, the scalar tail

template <class T>
bool is_nan_position(std::size_t i) {
  for (std::size_t k : nan_at)
    if (k == i) return true;
  return false;
}

// 0.5, -0.25, ... with NaN at nan_at.
template <class T>
std::vector<T> gradient_with_nans() {
  std::vector<T> g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = is_nan_position<T>(i) ? std::numeric_limits<T>::quiet_NaN()
                                                                     : T(i % 2 ? -0.25 : 0.5) * T(1 + i % 3);
  return g;
}

// One step of `o` on parameters 1, 2, ... with gradient_with_nans: NaN exactly where the gradient is NaN.
template <class T, class Optimizer>
void expect_nan_only_where_the_gradient_is(Optimizer o, const std::string& what) {
  std::vector<T> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = T(1 + i);
  const auto g = gradient_with_nans<T>();
  o.step(std::span<T>(p), std::span<const T>(g));
  for (std::size_t i = 0; i < n; ++i) {
    BOOST_TEST_CONTEXT(what << ", element " << i << " = " << p[i]) {
      if (is_nan_position<T>(i)) BOOST_TEST(std::isnan(p[i]));
      else BOOST_TEST(std::isfinite(p[i]));
    }
  }
}

template <class T>
void every_optimizer_keeps_nan(T clip_value) {
  const std::string tag = clip_value > 0 ? " clip_value" : "";
  expect_nan_only_where_the_gradient_is<T>(opt::basic_sgd<T>({.lr = T(0.1), .clip_value = clip_value}), "sgd" + tag);
  expect_nan_only_where_the_gradient_is<T>(
      opt::basic_sgd<T>({.lr = T(0.1), .momentum = T(0.9), .nesterov = true, .clip_value = clip_value}),
      "sgd nesterov" + tag);
  expect_nan_only_where_the_gradient_is<T>(opt::basic_adam<T, false>({.lr = T(0.1), .clip_value = clip_value}),
                                           "adam" + tag);
  expect_nan_only_where_the_gradient_is<T>(
      opt::basic_adamw<T>({.lr = T(0.1), .amsgrad = true, .clip_value = clip_value}), "adamw amsgrad" + tag);
  expect_nan_only_where_the_gradient_is<T>(
      opt::basic_rmsprop<T>({.lr = T(0.1), .momentum = T(0.5), .centered = true, .clip_value = clip_value}),
      "rmsprop centered" + tag);
  expect_nan_only_where_the_gradient_is<T>(opt::basic_adagrad<T>({.lr = T(0.1), .clip_value = clip_value}),
                                           "adagrad" + tag);
}

// Two arrays as a network shows them to the optimizer and the clipping functions.
template <class T>
struct two_arrays {
  std::vector<T> w = std::vector<T>(n, T(1)), b = std::vector<T>(4, T(2));
  std::vector<T> gw = gradient_with_nans<T>(), gb = {T(0.5), T(-1), T(2), T(0.25)};
  template <class F>
  void for_each_parameter(F&& f) {
    fnn::parameter_ref<T> r{0, "weight", fnn::parameter_kind::weight, w, gw, {1, fnn::index_t(n)}, 2};
    f(r);
    r = {0, "bias", fnn::parameter_kind::bias, b, gb, {4, 1}, 1};
    f(r);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(nan_propagation)

// The clamp every optimizer applies (clip_value, or +-inf when off) used to give -inf for NaN in SIMD lanes
// (x86 max returns its second operand on NaN) and NaN in the scalar tail.
BOOST_AUTO_TEST_CASE(clamp_keeps_nan_in_vector_body_and_tail) {
  for (const float bound : {0.3f, std::numeric_limits<float>::infinity()}) {
    const auto g = gradient_with_nans<float>();
    fnn::buffer<float> out(n, -99.f);
    ex::assign(ex::array(out), ex::clamp(ex::array(std::span<const float>(g)), -bound, bound));
    for (std::size_t i = 0; i < n; ++i)
      BOOST_TEST_CONTEXT("bound " << bound << ", element " << i << " = " << out[i]) {
        if (is_nan_position<float>(i)) BOOST_TEST(std::isnan(out[i]));
        else BOOST_TEST(out[i] == std::min(std::max(g[i], -bound), bound));
      }
  }
}

// max/min return their second operand on NaN in the vector body and in the tail alike (amsgrad's
// max(vmax, v) then keeps a NaN v, as torch.maximum does).
BOOST_AUTO_TEST_CASE(max_and_min_take_the_second_operand_on_nan_everywhere) {
  const auto g = gradient_with_nans<double>();
  const std::vector<double> ones(n, 1.0);
  fnn::buffer<double> mx(n), mn(n), mx_first(n);
  const auto G = ex::array(std::span<const double>(g));
  const auto O = ex::array(std::span<const double>(ones));
  ex::assign(ex::array(mx), ex::max(O, G));
  ex::assign(ex::array(mn), ex::min(O, G));
  ex::assign(ex::array(mx_first), ex::max(G, O));
  for (std::size_t i = 0; i < n; ++i)
    BOOST_TEST_CONTEXT("element " << i) {
      if (is_nan_position<double>(i)) {
        BOOST_TEST(std::isnan(mx[i]));
        BOOST_TEST(std::isnan(mn[i]));
        BOOST_TEST(mx_first[i] == 1.0);
      } else {
        BOOST_TEST(mx[i] == std::max(1.0, g[i]));
        BOOST_TEST(mn[i] == std::min(1.0, g[i]));
      }
    }
}

BOOST_AUTO_TEST_CASE(nan_gradient_gives_nan_weight_in_every_optimizer) {
  every_optimizer_keeps_nan<float>(0.f);
  every_optimizer_keeps_nan<float>(0.3f);
  every_optimizer_keeps_nan<double>(0.0);
  every_optimizer_keeps_nan<double>(0.3);
}

// torch's clip_grad_norm_ with a NaN norm multiplies every gradient by NaN: all weights become NaN, and
// step() reports the NaN norm. (Before, the norm pass saw -inf for NaN and clipped everything to nothing.)
BOOST_AUTO_TEST_CASE(nan_global_norm_makes_every_weight_nan) {
  for (const bool only_first : {false, true}) {
    BOOST_TEST_CONTEXT((only_first ? "one NaN, in the first register" : "NaN in registers and tail")) {
      two_arrays<float> net;
      if (only_first) net.gw[20] = net.gw[36] = 0.5f;
      opt::sgd o({.lr = 0.1f, .max_grad_norm = 1.f});
      const auto stats = o.step(net);
      BOOST_TEST(std::isnan(stats.grad_norm));
      BOOST_TEST(std::isnan(stats.clip_scale));
      for (float v : net.w) BOOST_TEST(std::isnan(v));
      for (float v : net.b) BOOST_TEST(std::isnan(v));
    }
  }
}

BOOST_AUTO_TEST_CASE(standalone_clipping_keeps_nan) {
  two_arrays<double> net;
  const double norm = opt::clip_grad_norm(net, 1.0);
  BOOST_TEST(std::isnan(norm));
  // Every gradient is NaN now, the finite ones included (a coefficient of 1 used to leave them unclipped).
  for (double g : net.gw) BOOST_TEST(std::isnan(g));
  for (double g : net.gb) BOOST_TEST(std::isnan(g));

  two_arrays<double> other;
  opt::clip_grad_value(other, 0.3);
  for (std::size_t i = 0; i < n; ++i)
    BOOST_TEST_CONTEXT("element " << i << " = " << other.gw[i]) {
      if (is_nan_position<double>(i)) BOOST_TEST(std::isnan(other.gw[i]));
      else BOOST_TEST(std::abs(other.gw[i]) <= 0.3);
    }
}

BOOST_AUTO_TEST_SUITE_END()
