#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include "fnn/optim/ema.hpp"
#include "fnn/optim/schedule.hpp"
#include "fnn/optim/sgd.hpp"

namespace opt = fnn::optim;
namespace tt = boost::test_tools;

BOOST_AUTO_TEST_SUITE(schedules)

BOOST_AUTO_TEST_CASE(step_multistep_exponential_inverse_time) {
  const opt::step_lr s(0.1, 30, 0.5);
  BOOST_TEST(s.lr_at(0) == 0.1);
  BOOST_TEST(s.lr_at(29) == 0.1);
  BOOST_TEST(s.lr_at(30) == 0.05, tt::tolerance(1e-15));
  BOOST_TEST(s.lr_at(95) == 0.0125, tt::tolerance(1e-15));
  const opt::multi_step_lr m(1.0, {10, 20}, 0.1);
  BOOST_TEST(m.lr_at(9) == 1.0);
  BOOST_TEST(m.lr_at(10) == 0.1, tt::tolerance(1e-15));
  BOOST_TEST(m.lr_at(25) == 0.01, tt::tolerance(1e-15));
  const opt::exponential_lr e(2.0, 0.9);
  BOOST_TEST(e.lr_at(3) == 2.0 * 0.9 * 0.9 * 0.9, tt::tolerance(1e-15));
  const opt::inverse_time_lr it(1.0, 0.5);
  BOOST_TEST(it.lr_at(4) == 1.0 / 3.0, tt::tolerance(1e-15));
}

BOOST_AUTO_TEST_CASE(cosine_and_restarts) {
  const opt::cosine_annealing_lr c(0.1, 100, 0.001);
  BOOST_TEST(c.lr_at(0) == 0.1, tt::tolerance(1e-15));
  BOOST_TEST(c.lr_at(50) == 0.001 + 0.099 * 0.5, tt::tolerance(1e-12));
  BOOST_TEST(c.lr_at(100) == 0.001, tt::tolerance(1e-12));
  BOOST_TEST(c.lr_at(150) == c.lr_at(50), tt::tolerance(1e-12));  // periodic past t_max, as torch's recursion
  const opt::cosine_warm_restarts_lr r(0.1, 10, 2, 0.0);
  BOOST_TEST(r.lr_at(0) == 0.1);
  BOOST_TEST(r.lr_at(10) == 0.1);  // restart
  BOOST_TEST(r.lr_at(20) == 0.1 * (1 + std::cos(std::numbers::pi * 10 / 20)) / 2, tt::tolerance(1e-12));
  BOOST_TEST(r.lr_at(30) == 0.1);  // second restart after 10 + 20
  const opt::cosine_warm_restarts_lr r1(0.1, 10);
  BOOST_TEST(r1.lr_at(25) == r1.lr_at(5));
}

BOOST_AUTO_TEST_CASE(warmup_then_inner) {
  const opt::linear_warmup w(5, 0.2, opt::cosine_annealing_lr(0.1, 20));
  BOOST_TEST(w.lr_at(0) == 0.02, tt::tolerance(1e-12));
  BOOST_TEST(w.lr_at(2) == 0.1 * (0.2 + 0.8 * 2 / 5), tt::tolerance(1e-12));
  BOOST_TEST(w.lr_at(5) == 0.1, tt::tolerance(1e-12));
  BOOST_TEST(w.lr_at(15) == opt::cosine_annealing_lr(0.1, 20).lr_at(10), tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(drives_an_optimizer) {
  const opt::exponential_lr e(0.1, 0.5);
  opt::sgd o({.lr = 0.1f});
  std::vector<float> p{0.0f}, g{1.0f};
  for (int t = 0; t < 3; ++t) {
    o.set_lr(static_cast<float>(e.lr_at(t)));
    o.step(std::span<float>(p), std::span<const float>(g));
  }
  BOOST_TEST(p[0] == -(0.1f + 0.05f + 0.025f), tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(bad_arguments_throw) {
  BOOST_CHECK_THROW(opt::step_lr(0.1, 0), fnn::value_error);
  BOOST_CHECK_THROW(opt::step_lr(-0.1, 10), fnn::value_error);
  BOOST_CHECK_THROW(opt::multi_step_lr(0.1, {20, 10}), fnn::value_error);
  BOOST_CHECK_THROW(opt::exponential_lr(0.1, 0.0), fnn::value_error);
  BOOST_CHECK_THROW(opt::cosine_annealing_lr(0.1, 0), fnn::value_error);
  BOOST_CHECK_THROW(opt::cosine_warm_restarts_lr(0.1, 10, 0), fnn::value_error);
  BOOST_CHECK_THROW(opt::linear_warmup(5, 0.0, opt::exponential_lr(0.1, 0.9)), fnn::value_error);
  BOOST_CHECK_THROW(opt::exponential_lr(0.1, 0.9).lr_at(-1), fnn::value_error);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {
struct two_arrays {
  std::vector<float> a{1, 2, 3}, b{10, 20}, ga{0, 0, 0}, gb{0, 0};
  template <class F>
  void for_each_parameter(F&& f) {
    fnn::parameter_ref<float> r{0, "weight", fnn::parameter_kind::weight, a, ga, {3, 1}, 1};
    f(r);
    r = {0, "bias", fnn::parameter_kind::bias, b, gb, {2, 1}, 1};
    f(r);
  }
};
}  // namespace

BOOST_AUTO_TEST_SUITE(ema)

BOOST_AUTO_TEST_CASE(average_swap_and_copy) {
  two_arrays net;
  opt::ema avg({.decay = 0.5f});
  avg.update(net);  // shadow = params
  net.a = {3, 4, 5};
  net.b = {30, 40};
  avg.update(net);  // shadow = 0.5 * old + 0.5 * new
  BOOST_TEST(avg.num_updates() == 2);
  BOOST_TEST(std::vector<float>(avg.shadow(0).begin(), avg.shadow(0).end()) == (std::vector<float>{2, 3, 4}));
  avg.swap(net);
  BOOST_TEST(net.a == (std::vector<float>{2, 3, 4}));
  BOOST_TEST(net.b == (std::vector<float>{20, 30}));
  avg.swap(net);
  BOOST_TEST(net.a == (std::vector<float>{3, 4, 5}));
  avg.copy_to(net);
  BOOST_TEST(net.b == (std::vector<float>{20, 30}));
}

BOOST_AUTO_TEST_CASE(warmup_uses_smaller_decay_early) {
  std::vector<float> p{0.0f};
  opt::ema avg({.decay = 0.999f, .warmup = true});
  avg.update(std::span<const float>(p));
  p[0] = 1.0f;
  avg.update(std::span<const float>(p));  // n = 2: decay = min(0.999, 3 / 12) = 0.25
  BOOST_TEST(avg.shadow(0)[0] == 0.75f, tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(errors) {
  BOOST_CHECK_THROW(opt::ema({.decay = 1.5f}), fnn::value_error);
  two_arrays net;
  opt::ema avg;
  BOOST_CHECK_THROW(avg.swap(net), fnn::shape_error);  // nothing averaged yet
  avg.update(net);
  std::vector<float> p{1.0f};
  BOOST_CHECK_THROW(avg.update(std::span<const float>(p)), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()
