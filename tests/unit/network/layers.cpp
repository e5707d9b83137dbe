// Forward semantics of layers and losses against independent formulas and PyTorch's documented
// values; batch-norm running statistics; dropout; LSE stability; initializer statistics.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <numeric>

#include "fnn/fnn.hpp"
#include "fnn/network/describe.hpp"
#include "helpers.hpp"

namespace tt = boost::test_tools;
using fnn_test::random_matrix;

namespace {

template <class Spec>
double apply(double x) {
  fnn::basic_sequential<double, fnn::input<1>, Spec> net;
  fnn::matrix<double> in(1, 1);
  in(0, 0) = x;
  return net.infer(in.view())(0, 0);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(activations)

// Reference values printed by torch 1.13 (float64, torch.nn.functional) for x in {-2, -0.5, 0.5, 3}.
BOOST_AUTO_TEST_CASE(values_match_pytorch) {
  const double xs[] = {-2.0, -0.5, 0.5, 3.0};
  const double gelu[] = {-0.04550026389635842, -0.15426876936299344, 0.34573123063700656, 2.99595030590511};
  const double gelu_tanh[] = {-0.04540230591222494, -0.15428599017485606, 0.34571400982514394, 2.996362607918227};
  const double selu[] = {-1.5201664685956948, -0.6917581878028713, 0.5253504936777402, 3.1521029620664414};
  const double elu[] = {-0.8646647167633873, -0.3934693402873666, 0.5, 3.0};
  const double silu[] = {-0.2384058440442351, -0.1887703343990727, 0.3112296656009273, 2.8577223804672998};
  for (int i = 0; i < 4; ++i) {
    const double x = xs[i];
    BOOST_TEST(apply<fnn::gelu>(x) == gelu[i], tt::tolerance(1e-12));
    BOOST_TEST(apply<fnn::gelu_tanh>(x) == gelu_tanh[i], tt::tolerance(1e-12));
    BOOST_TEST(apply<fnn::selu>(x) == selu[i], tt::tolerance(1e-11));
    BOOST_TEST(apply<fnn::elu<1.0>>(x) == elu[i], tt::tolerance(1e-12));
    BOOST_TEST(apply<fnn::swish>(x) == silu[i], tt::tolerance(1e-12));
    BOOST_TEST(apply<fnn::sigmoid>(x) == 1 / (1 + std::exp(-x)), tt::tolerance(1e-14));
    BOOST_TEST(apply<fnn::tanh>(x) == std::tanh(x), tt::tolerance(1e-14));
    BOOST_TEST(apply<fnn::relu>(x) == std::max(x, 0.0));
    BOOST_TEST(apply<fnn::leaky_relu<0.2>>(x) == (x > 0 ? x : 0.2 * x), tt::tolerance(1e-15));
    BOOST_TEST(apply<fnn::prelu>(x) == (x > 0 ? x : 0.25 * x), tt::tolerance(1e-15));
  }
  // Saturation: no overflow or NaN at large magnitudes.
  BOOST_TEST(apply<fnn::sigmoid>(-800.0) == 0.0);
  BOOST_TEST(apply<fnn::sigmoid>(800.0) == 1.0);
  BOOST_TEST(apply<fnn::swish>(-800.0) == 0.0);
  BOOST_TEST(apply<fnn::gelu>(-40.0) == 0.0);
}

// f and f' at huge magnitudes, in float, scalar and vector: no NaN, and the saturated slopes (1 to the
// right, 0 or the negative-side limit to the left). gelu_tanh's f' once gave NaN above ~1.8e19 (0 * inf).
template <class Fn>
void check_extremes(float right_slope, float left_slope) {
  using V = fnn::simd::batch<float>;
  for (const float x : {1e20f, 3e38f, -1e20f, -3e38f, 1e4f, -1e4f}) {
    BOOST_TEST_CONTEXT(Fn::name << " at x = " << x) {
      const float y = Fn::f(x), d = Fn::df(x, y);
      BOOST_TEST(!std::isnan(y));
      BOOST_TEST(d == (x > 0 ? right_slope : left_slope), tt::tolerance(1e-6f));
      const V dv = Fn::df(V(x), Fn::f(V(x)));
      BOOST_TEST(dv.get(0) == d);
    }
  }
}

BOOST_AUTO_TEST_CASE(derivatives_saturate_without_nan) {
  namespace act = fnn::act;
  check_extremes<act::sigmoid_fn>(0.f, 0.f);
  check_extremes<act::tanh_fn>(0.f, 0.f);
  check_extremes<act::relu_fn>(1.f, 0.f);
  check_extremes<act::leaky_relu_fn<0.2>>(1.f, 0.2f);
  check_extremes<act::elu_fn<1.0>>(1.f, 0.f);
  check_extremes<act::selu_fn>(1.0507009873554805f, 0.f);
  check_extremes<act::gelu_fn>(1.f, 0.f);
  check_extremes<act::gelu_tanh_fn>(1.f, 0.f);
  check_extremes<act::swish_fn>(1.f, 0.f);
}

BOOST_AUTO_TEST_CASE(maxout_takes_group_maximum) {
  fnn::basic_sequential<double, fnn::input<6>, fnn::maxout<3>> net;
  fnn::matrix<double> x(1, 6);
  const double v[] = {1, 5, 2, -3, -1, -2};
  std::copy(v, v + 6, x.data());
  const auto y = net.infer(x.view());
  BOOST_TEST(y.cols() == 2);
  BOOST_TEST(y(0, 0) == 5.0);
  BOOST_TEST(y(0, 1) == -1.0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(normalization)

BOOST_AUTO_TEST_CASE(batch_norm_statistics_and_running_buffers) {
  fnn::basic_sequential<double, fnn::input<2>, fnn::batch_norm> net;
  fnn::matrix<double> x(4, 2);
  // Column 0: 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3). Column 1: offset 1e6 + 0, 0, 0, 2.
  const double v[] = {1, 1e6, 2, 1e6, 3, 1e6, 4, 1e6 + 2};
  std::copy(v, v + 8, x.data());
  const auto y = net.forward(x.view(), fnn::mode::train);
  BOOST_TEST(y(0, 0) == (1 - 2.5) / std::sqrt(1.25 + 1e-5), tt::tolerance(1e-12));
  BOOST_TEST(y(3, 1) == 1.5 / std::sqrt(0.75 + 1e-5), tt::tolerance(1e-9));  // large offset does not cancel
  auto& bn = net.layer<0>();
  BOOST_TEST(bn.running_mean()[0] == 0.1 * 2.5, tt::tolerance(1e-14));
  BOOST_TEST(bn.running_var()[0] == 0.9 + 0.1 * 5.0 / 3.0, tt::tolerance(1e-14));
  BOOST_TEST(bn.running_var()[1] == 0.9 + 0.1 * 1.0, tt::tolerance(1e-9));  // unbiased: 3/3
  BOOST_TEST(bn.batches_tracked() == 1);
  net.forward(x.view(), fnn::mode::train);
  BOOST_TEST(bn.running_mean()[0] == 0.9 * 0.25 + 0.1 * 2.5, tt::tolerance(1e-14));
  BOOST_TEST(bn.batches_tracked() == 2);
  // Eval mode uses the running statistics and leaves them alone.
  const double rm = bn.running_mean()[0], rv = bn.running_var()[0];
  const auto e = net.infer(x.view());
  BOOST_TEST(e(1, 0) == (2 - rm) / std::sqrt(rv + 1e-5), tt::tolerance(1e-12));
  BOOST_TEST(bn.batches_tracked() == 2);
}

BOOST_AUTO_TEST_CASE(layer_norm_normalizes_each_sample) {
  fnn::basic_sequential<double, fnn::input<5>, fnn::layer_norm> net;
  const auto x = random_matrix<double>(3, 5, 4, 3.0);
  const auto y = net.forward(x.view(), fnn::mode::train);
  for (fnn::index_t i = 0; i < 3; ++i) {
    double m = 0, s = 0;
    for (fnn::index_t j = 0; j < 5; ++j) m += y(i, j) / 5;
    for (fnn::index_t j = 0; j < 5; ++j) s += (y(i, j) - m) * (y(i, j) - m) / 5;
    BOOST_TEST(m == 0.0, tt::tolerance(1e-12));
    BOOST_TEST(std::abs(s - 1.0) < 1e-4);  // eps = 1e-5 shrinks it a little
  }
}

// Each sample's features in groups of 4 (group_norm<3> over 12): every group has mean 0 and variance ~1.
BOOST_AUTO_TEST_CASE(group_norm_normalizes_each_group_of_each_sample) {
  fnn::basic_sequential<double, fnn::input<12>, fnn::group_norm<3>> net;
  auto x = random_matrix<double>(4, 12, 6, 3.0);
  for (fnn::index_t i = 0; i < 4; ++i)
    for (fnn::index_t j = 4; j < 8; ++j) x(i, j) += 50.0;  // one group far off: its own statistics remove it
  const auto y = net.forward(x.view(), fnn::mode::train);
  for (fnn::index_t i = 0; i < 4; ++i)
    for (fnn::index_t g = 0; g < 3; ++g) {
      double m = 0, s = 0;
      for (fnn::index_t j = 4 * g; j < 4 * g + 4; ++j) m += y(i, j) / 4;
      for (fnn::index_t j = 4 * g; j < 4 * g + 4; ++j) s += (y(i, j) - m) * (y(i, j) - m) / 4;
      BOOST_TEST(m == 0.0, tt::tolerance(1e-12));
      BOOST_TEST(std::abs(s - 1.0) < 1e-3);
      // The same as normalizing the group by hand with biased variance and eps 1e-5.
      double xm = 0, xv = 0;
      for (fnn::index_t j = 4 * g; j < 4 * g + 4; ++j) xm += x(i, j) / 4;
      for (fnn::index_t j = 4 * g; j < 4 * g + 4; ++j) xv += (x(i, j) - xm) * (x(i, j) - xm) / 4;
      for (fnn::index_t j = 4 * g; j < 4 * g + 4; ++j)
        BOOST_TEST(y(i, j) == (x(i, j) - xm) / std::sqrt(xv + 1e-5), tt::tolerance(1e-12));
    }
  // Eval mode computes the same (no running statistics).
  const auto e = net.infer(x.view());
  for (fnn::index_t i = 0; i < 4; ++i)
    for (fnn::index_t j = 0; j < 12; ++j) BOOST_TEST(e(i, j) == y(i, j));
}

// group_norm<1> is layer_norm, with the same per-feature affine; group_norm<C> leaves only beta.
BOOST_AUTO_TEST_CASE(group_norm_one_group_is_layer_norm_and_c_groups_give_beta) {
  fnn::basic_sequential<double, fnn::input<6>, fnn::group_norm<1>> gn;
  fnn::basic_sequential<double, fnn::input<6>, fnn::layer_norm> ln;
  fnn::basic_sequential<double, fnn::input<6>, fnn::group_norm<6>> inorm;
  auto set_affine = [](auto& net) {
    net.for_each_parameter([](auto& p) {
      for (std::size_t j = 0; j < p.value.size(); ++j) p.value[j] = (p.suffix == "weight" ? 0.5 : -1.0) + 0.1 * double(j);
    });
  };
  set_affine(gn), set_affine(ln), set_affine(inorm);
  const auto x = random_matrix<double>(5, 6, 2);
  const auto a = gn.infer(x.view()), b = ln.infer(x.view()), c = inorm.infer(x.view());
  for (fnn::index_t i = 0; i < 5; ++i)
    for (fnn::index_t j = 0; j < 6; ++j) {
      BOOST_TEST(a(i, j) == b(i, j), tt::tolerance(1e-14));
      BOOST_TEST(c(i, j) == -1.0 + 0.1 * double(j), tt::tolerance(1e-14));
    }
}

// Its description (checkpoint metadata "fnn.layers") carries the group count; its affine is "<i>.weight" and
// "<i>.bias" (torch's GroupNorm state_dict), a norm scale and shift that weights_only decay skips.
BOOST_AUTO_TEST_CASE(group_norm_description_and_parameter_names) {
  using net_t = fnn::sequential<fnn::input<4>, fnn::dense<6>, fnn::group_norm<3>, fnn::relu, fnn::dense<2>>;
  BOOST_TEST(fnn::layers_text<net_t>() == "dense 4 6; group_norm 6 6 groups=3; relu 6 6; dense 6 2");
  net_t net;
  std::vector<std::string> names;
  std::vector<fnn::parameter_kind> kinds;
  net.for_each_parameter([&](auto& p) {
    names.push_back(p.name());
    kinds.push_back(p.kind);
  });
  const std::vector<std::string> expected{"0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"};
  BOOST_TEST(names == expected, tt::per_element());
  BOOST_TEST((kinds[2] == fnn::parameter_kind::norm_scale && kinds[3] == fnn::parameter_kind::norm_shift));
  BOOST_TEST(net.parameter_count() == 4u * 6 + 6 + 6 + 6 + 6 * 2 + 2);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(dropout)

BOOST_AUTO_TEST_CASE(inverted_scaling_and_rate) {
  fnn::sequential<fnn::input<1000>, fnn::dropout<0.3>> net{fnn::seed{1}};
  fnn::matrix<float> x(50, 1000);
  std::fill(x.flat().begin(), x.flat().end(), 1.0f);
  const auto y = net.forward(x.view(), fnn::mode::train);
  std::size_t zeros = 0;
  for (fnn::index_t i = 0; i < y.size(); ++i) {
    const float v = y.data()[i];
    if (v == 0.0f) ++zeros;
    else BOOST_REQUIRE_CLOSE(v, 1.0f / 0.7f, 1e-4);
  }
  // 50000 Bernoulli(0.3): standard deviation ~102; allow 5 sigma.
  BOOST_TEST(std::abs(double(zeros) - 15000.0) < 512.0);
  const auto e = net.infer(x.view());
  for (fnn::index_t i = 0; i < e.size(); ++i) BOOST_REQUIRE_EQUAL(e.data()[i], 1.0f);
}

BOOST_AUTO_TEST_CASE(masks_are_deterministic_under_a_seed) {
  using net_t = fnn::sequential<fnn::input<64>, fnn::dropout<0.5>>;
  net_t a{fnn::seed{42}}, b{fnn::seed{42}}, c{fnn::seed{43}};
  const auto x = random_matrix<float>(8, 64, 3);
  const fnn::matrix<float> ya(8, 64, std::span<const float>(a.forward(x.view()).data(), 512));
  const fnn::matrix<float> yb(8, 64, std::span<const float>(b.forward(x.view()).data(), 512));
  const fnn::matrix<float> yc(8, 64, std::span<const float>(c.forward(x.view()).data(), 512));
  BOOST_TEST(std::equal(ya.flat().begin(), ya.flat().end(), yb.flat().begin()));
  BOOST_TEST(!std::equal(ya.flat().begin(), ya.flat().end(), yc.flat().begin()));
  // The next batch gets a fresh mask.
  const auto ya2 = a.forward(x.view());
  BOOST_TEST(!std::equal(ya.flat().begin(), ya.flat().end(), ya2.data()));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(losses)

BOOST_AUTO_TEST_CASE(cross_entropy_is_stable_at_extreme_logits) {
  fnn::matrix<float> z(2, 3);
  const float v[] = {1e4f, -1e4f, 0.0f, -1e4f, 1e4f, 1e4f};
  std::copy(v, v + 6, z.data());
  const std::int32_t labels[] = {1, 2};
  fnn::matrix<float> g(2, 3);
  const float loss = fnn::loss::softmax_cross_entropy{}(z.view(), std::span<const std::int32_t>(labels), g.view());
  // Sample 0: lse = 1e4, loss = 2e4. Sample 1: lse = 1e4 + log 2, loss = log 2.
  BOOST_TEST(std::isfinite(loss));
  BOOST_TEST(loss == (2e4f + std::log(2.0f)) / 2, tt::tolerance(1e-6f));
  for (float gv : g.flat()) BOOST_TEST(std::isfinite(gv));
  BOOST_TEST(g(0, 0) == 0.5f, tt::tolerance(1e-6f));
  BOOST_TEST(g(0, 1) == -0.5f, tt::tolerance(1e-6f));
  BOOST_TEST(g(1, 2) == -0.25f, tt::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(cross_entropy_value) {
  fnn::matrix<double> z(1, 3);
  z(0, 0) = 1;
  z(0, 1) = 2;
  z(0, 2) = 3;
  const std::int32_t label[] = {0};
  const double l = fnn::loss::softmax_cross_entropy{}(z.view(), std::span<const std::int32_t>(label),
                                                      fnn::matrix_view<double>{});
  BOOST_TEST(l == std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 1.0, tt::tolerance(1e-14));
}

BOOST_AUTO_TEST_CASE(bce_with_logits_is_stable) {
  fnn::matrix<double> z(1, 2), t(1, 2);
  z(0, 0) = 1000;
  z(0, 1) = -1000;
  t(0, 0) = 0;
  t(0, 1) = 1;
  const double l = fnn::loss::binary_cross_entropy_with_logits{}(z.view(), t.view(), fnn::matrix_view<double>{});
  BOOST_TEST(l == 1000.0, tt::tolerance(1e-12));  // each element costs 1000
  z(0, 0) = 0.3;
  t(0, 0) = 0.8;
  z(0, 1) = -1.2;
  t(0, 1) = 0.1;
  auto bce = [](double x, double y) { return -(y * std::log(1 / (1 + std::exp(-x))) + (1 - y) * std::log(1 - 1 / (1 + std::exp(-x)))); };
  const double l2 = fnn::loss::binary_cross_entropy_with_logits{}(z.view(), t.view(), fnn::matrix_view<double>{});
  BOOST_TEST(l2 == (bce(0.3, 0.8) + bce(-1.2, 0.1)) / 2, tt::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(mse_value) {
  fnn::matrix<double> y(2, 1), t(2, 1);
  y(0, 0) = 1;
  y(1, 0) = 3;
  t(0, 0) = 0;
  t(1, 0) = 1;
  BOOST_TEST(fnn::loss::mean_squared_error{}(y.view(), t.view(), fnn::matrix_view<double>{}) == 2.5);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(initializers)

namespace {
struct moments {
  double mean, std, max_abs;
};
moments of(std::span<const double> w) {
  const double n = double(w.size());
  const double m = std::accumulate(w.begin(), w.end(), 0.0) / n;
  double s = 0, mx = 0;
  for (double v : w) s += (v - m) * (v - m), mx = std::max(mx, std::abs(v));
  return {m, std::sqrt(s / n), mx};
}
template <class Init>
moments draw(fnn::index_t fan_in, fnn::index_t fan_out, double gain) {
  std::vector<double> w(std::size_t(fan_in * fan_out));
  fnn::random_engine rng(5);
  Init::fill(std::span<double>(w), fan_in, fan_out, gain, rng);
  return of(w);
}
// With n = 200000 samples the sample std is within ~0.3% (3 sigma) of the true one.
void expect_std(moments m, double expected) {
  BOOST_TEST(std::abs(m.mean) < 4 * expected / std::sqrt(200000.0));
  BOOST_TEST(m.std == expected, tt::tolerance(0.005));
}
}  // namespace

BOOST_AUTO_TEST_CASE(formulas) {
  const fnn::index_t in = 400, out = 500;
  expect_std(draw<fnn::init::he_normal>(in, out, std::sqrt(2.0)), std::sqrt(2.0 / in));
  expect_std(draw<fnn::init::he_uniform>(in, out, std::sqrt(2.0)), std::sqrt(2.0 / in));  // bound sqrt(6/in)
  expect_std(draw<fnn::init::xavier_normal>(in, out, 1.0), std::sqrt(2.0 / (in + out)));
  const auto xu = draw<fnn::init::xavier_uniform>(in, out, 1.0);
  expect_std(xu, std::sqrt(6.0 / (in + out)) / std::sqrt(3.0));
  BOOST_TEST(xu.max_abs <= std::sqrt(6.0 / (in + out)));
  expect_std(draw<fnn::init::lecun_normal>(in, out, 1.0), std::sqrt(1.0 / in));
  const auto lu = draw<fnn::init::lecun_uniform>(in, out, 1.0);  // U(+-sqrt(3/in)): the same variance 1/in
  expect_std(lu, std::sqrt(1.0 / in));
  BOOST_TEST(lu.max_abs <= std::sqrt(3.0 / in));
  BOOST_TEST(lu.max_abs > 0.99 * std::sqrt(3.0 / in));  // uniform up to the bound, not a narrower normal
  expect_std(draw<fnn::init::normal<0.02>>(in, out, 1.0), 0.02);
  expect_std(draw<fnn::init::uniform<0.5>>(in, out, 1.0), 0.5 / std::sqrt(3.0));
  expect_std(draw<fnn::init::torch_linear_default>(in, out, 1.0), 1.0 / std::sqrt(3.0 * in));
  BOOST_TEST(draw<fnn::init::zeros>(in, out, 1.0).max_abs == 0.0);
  BOOST_TEST(draw<fnn::init::constant<0.5>>(in, out, 1.0).mean == 0.5);
}

BOOST_AUTO_TEST_CASE(network_picks_the_initializer_from_the_activation) {
  fnn::basic_sequential<double, fnn::input<400>, fnn::dense<500>, fnn::batch_norm, fnn::relu, fnn::dense<500>,
                        fnn::tanh>
      net{fnn::seed{3}};
  expect_std(of(net.layer<0>().weight()), std::sqrt(2.0 / 400));
  expect_std(of(net.layer<3>().weight()), std::sqrt(2.0 / 1000));
  BOOST_TEST(of(net.layer<0>().bias()).max_abs == 0.0);
  // The same seed gives the same weights; another seed does not.
  decltype(net) same{fnn::seed{3}}, other{fnn::seed{4}};
  BOOST_TEST(std::equal(net.layer<0>().weight().begin(), net.layer<0>().weight().end(), same.layer<0>().weight().begin()));
  BOOST_TEST(!std::equal(net.layer<0>().weight().begin(), net.layer<0>().weight().end(), other.layer<0>().weight().begin()));
}

BOOST_AUTO_TEST_SUITE_END()
