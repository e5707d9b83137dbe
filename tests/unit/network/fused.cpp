// The fused stages against the reference path: the same network type run with fnn::fused and
// fnn::unfused from the same seed must agree (outputs, every gradient, input gradients, running
// statistics, eval outputs) over training steps, for every activation the epilogues accept and for
// widths and batch sizes that are not multiples of the SIMD width or GEMM tile. Also the accuracy
// of each vectorized activation against a double-precision reference.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/simd/simd.hpp"
#include "helpers.hpp"

namespace {

using fnn_test::random_labels;
using fnn_test::random_matrix;

// max |a - b| / max(1, max |b|) over two equally long ranges.
template <class A, class B>
double scaled_difference(const A& a, const B& b, std::size_t n) {
  double diff = 0, scale = 1;
  for (std::size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

template <class Net>
std::vector<std::vector<float>> grads_of(Net& net) {
  std::vector<std::vector<float>> g;
  net.for_each_parameter([&](auto& p) { g.emplace_back(p.grad.begin(), p.grad.end()); });
  return g;
}
template <class Net>
std::vector<std::vector<float>> buffers_of(Net& net) {
  std::vector<std::vector<float>> g;
  net.for_each_buffer([&](auto& b) {
    if (!b.counter) g.emplace_back(b.value.begin(), b.value.end());
    else g.push_back({float(*b.counter)});
  });
  return g;
}

void expect_close(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b, double tol,
                  const std::string& what) {
  BOOST_REQUIRE_EQUAL(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    BOOST_REQUIRE_EQUAL(a[i].size(), b[i].size());
    const double d = scaled_difference(a[i], b[i], a[i].size());
    BOOST_TEST_INFO(what << " #" << i);
    BOOST_TEST(d < tol);
  }
}

// Trains both nets side by side for a few steps and compares everything after each step.
template <class Fused, class Unfused>
void compare_training(fnn::index_t batch, std::uint32_t seed, double tol = 2e-4) {
  static_assert(std::is_same_v<typename Fused::policy, fnn::fused> &&
                std::is_same_v<typename Unfused::policy, fnn::unfused>);
  Fused f{fnn::seed{seed}};
  Unfused u{fnn::seed{seed}};
  fnn_test::plain_sgd sgd{0.05};
  const fnn::loss::softmax_cross_entropy ce;
  for (int step = 0; step < 3; ++step) {
    const auto x = random_matrix<float>(batch, fnn::index_t(Fused::in_features), seed + 10 * step, 1.5);
    const auto y = random_labels(std::size_t(batch), int(Fused::out_features), seed + 10 * step + 1);
    const auto yf = f.forward(x.view(), fnn::mode::train);
    const auto yu = u.forward(x.view(), fnn::mode::train);
    BOOST_TEST_INFO("step " << step << " batch " << batch);
    BOOST_TEST(scaled_difference(yf.data(), yu.data(), std::size_t(yf.size())) < tol);
    fnn::matrix<float> g(batch, fnn::index_t(Fused::out_features));
    ce(yu, y, g.view());
    f.zero_grad();
    u.zero_grad();
    f.backward(g.view(), true);
    u.backward(g.view(), true);
    expect_close(grads_of(f), grads_of(u), tol, "parameter gradient");
    BOOST_TEST(scaled_difference(f.input_gradient().data(), u.input_gradient().data(),
                                 std::size_t(f.input_gradient().size())) < tol);
    expect_close(buffers_of(f), buffers_of(u), tol, "buffer");
    sgd.step(f);
    sgd.step(u);
  }
  const auto x = random_matrix<float>(batch, fnn::index_t(Fused::in_features), seed + 99);
  const auto ef = f.infer(x.view());
  const fnn::matrix<float> ef_copy(ef.rows(), ef.cols(), std::span<const float>(ef.data(), std::size_t(ef.size())));
  const auto eu = u.infer(x.view());
  BOOST_TEST(scaled_difference(ef_copy.flat(), eu.data(), std::size_t(eu.size())) < tol);
}

template <class P, class Act>
using four_stage_net = fnn::network<P, float, fnn::input<17>, fnn::dense<33>, fnn::batch_norm, Act, fnn::dense<16>,
                                    Act, fnn::batch_norm, Act, fnn::dense<5>>;

using epilogue_activations = boost::mpl::list<fnn::sigmoid, fnn::tanh, fnn::relu, fnn::leaky_relu<0.1>,
                                              fnn::elu<1.0>, fnn::selu, fnn::gelu, fnn::gelu_tanh, fnn::swish>;

}  // namespace

BOOST_AUTO_TEST_SUITE(fused_vs_unfused)

BOOST_AUTO_TEST_CASE(the_plan_covers_every_kind) {
  namespace pl = fnn::plan;
  using pk = pl::stage_kind;
  static_assert(std::is_same_v<four_stage_net<fnn::fused, fnn::gelu>::plan,
                               pl::stages<pl::stage<pk::dense_bn_act, 0, 3>, pl::stage<pk::dense_act, 3, 2>,
                                          pl::stage<pk::bn_act, 5, 2>, pl::stage<pk::dense_only, 7, 1>>>);
  BOOST_TEST(fnn::simd::width<float> >= 1u);
  BOOST_TEST_MESSAGE("SIMD: " << fnn::simd::arch_name() << ", " << fnn::simd::width<float> << " floats per register");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(every_epilogue_activation, Act, epilogue_activations) {
  compare_training<four_stage_net<fnn::fused, Act>, four_stage_net<fnn::unfused, Act>>(37, 3);
}

BOOST_AUTO_TEST_CASE(batch_sizes_and_widths) {
  using namespace fnn;
  // Batch 2 (the smallest batch norm accepts in train mode), batches that are not multiples of the register tile's
  // rows, a large one.
  // With 2 or 3 samples, batch norm's input gradient is a difference of nearly equal terms scaled by
  // 1/std of a tiny sample: float rounding (float sums in the fused pass, double in the reference) is
  // amplified, so those batches get a looser tolerance.
  for (index_t batch : {2, 3, 15, 130})
    compare_training<four_stage_net<fused, gelu>, four_stage_net<unfused, gelu>>(batch, 5, batch <= 3 ? 2e-3 : 2e-4);
  // Width 1 features and widths around the SIMD width.
  using narrow_f = network<fused, float, input<1>, dense<1>, batch_norm, gelu, dense<15>, relu, dense<2>>;
  using narrow_u = network<unfused, float, input<1>, dense<1>, batch_norm, gelu, dense<15>, relu, dense<2>>;
  compare_training<narrow_f, narrow_u>(9, 7);
  using wide_f = network<fused, float, input<64>, dense<129>::without_bias, batch_norm, swish, dense<48>, fnn::tanh, dense<10>>;
  using wide_u = network<unfused, float, input<64>, dense<129>::without_bias, batch_norm, swish, dense<48>, fnn::tanh, dense<10>>;
  compare_training<wide_f, wide_u>(64, 9);
}

// Batch 1: train mode on a network without batch norm (a one-sample batch has no batch statistics: batch
// norm refuses it in train mode, as torch does), and eval-mode forward and backward of a batch-norm network.
BOOST_AUTO_TEST_CASE(batch_of_one) {
  using namespace fnn;
  using plain_f = network<fused, float, input<13>, dense<20>, gelu, dense<7>, swish, dense<3>>;
  using plain_u = network<unfused, float, input<13>, dense<20>, gelu, dense<7>, swish, dense<3>>;
  compare_training<plain_f, plain_u>(1, 11);

  four_stage_net<fused, gelu> f{seed{12}};
  four_stage_net<unfused, gelu> u{seed{12}};
  const auto x = random_matrix<float>(1, 17, 13, 1.5);
  const auto yf = f.forward(x.view(), mode::eval);
  const auto yu = u.forward(x.view(), mode::eval);
  BOOST_TEST(scaled_difference(yf.data(), yu.data(), std::size_t(yf.size())) < 2e-4);
  const auto g = random_matrix<float>(1, 5, 14);
  f.zero_grad();
  u.zero_grad();
  f.backward(g.view(), true);
  u.backward(g.view(), true);
  expect_close(grads_of(f), grads_of(u), 2e-4, "eval-mode parameter gradient, batch 1");
  BOOST_TEST(scaled_difference(f.input_gradient().data(), u.input_gradient().data(),
                               std::size_t(f.input_gradient().size())) < 2e-4);
}

BOOST_AUTO_TEST_CASE(thread_count_does_not_change_bits) {
  // Every stage kind, with passes big enough (batch x width > 2 x kernels::parallel_pass_elements) to run on two
  // threads, widths off the SIMD width. Two training steps at 1 and at 2 threads must give the same bits.
  using namespace fnn;
  using net_t = network<fused, float, input<37>, dense<260>, batch_norm, gelu, dense<261>, relu, batch_norm, gelu,
                        dense<257>, dense<11>>;
  const index_t batch = 520;
  static_assert(260 * 520 > 2 * kernels::parallel_pass_elements);
  std::vector<std::vector<float>> runs[2];
  for (int threads : {1, 2}) {
    set_num_threads(threads);
#if defined(FNN_HAS_OPENMP)
    BOOST_TEST(num_threads() == threads);
#endif
    net_t net{seed{31}};
    fnn_test::plain_sgd sgd{0.05};
    auto& out = runs[threads - 1];
    for (int step = 0; step < 2; ++step) {
      const auto x = random_matrix<float>(batch, 37, 32 + step, 1.5);
      const auto y = net.forward(x.view(), mode::train);
      out.emplace_back(y.data(), y.data() + y.size());
      fnn::matrix<float> g(batch, 11);
      loss::softmax_cross_entropy{}(y, random_labels(std::size_t(batch), 11, 40 + step), g.view());
      net.zero_grad();
      net.backward(g.view(), true);
      for (auto& v : grads_of(net)) out.push_back(std::move(v));
      for (auto& v : buffers_of(net)) out.push_back(std::move(v));
      out.emplace_back(net.input_gradient().data(), net.input_gradient().data() + net.input_gradient().size());
      sgd.step(net);
    }
  }
  set_num_threads(0);
  BOOST_REQUIRE_EQUAL(runs[0].size(), runs[1].size());
  for (std::size_t i = 0; i < runs[0].size(); ++i) {
    BOOST_TEST_INFO("array #" << i);
    BOOST_TEST((runs[0][i] == runs[1][i]));
  }
}

// dense + layer_norm + activation, the stage added as one plan rule plus its expressions.
template <class P, class Act>
using layer_norm_net = fnn::network<P, float, fnn::input<19>, fnn::dense<33>, fnn::layer_norm, Act,
                                    fnn::dense<8>::without_bias, fnn::layer_norm, Act, fnn::dense<4>>;

BOOST_AUTO_TEST_CASE(dense_layer_norm_activation_is_one_stage) {
  namespace pl = fnn::plan;
  using pk = pl::stage_kind;
  static_assert(std::is_same_v<layer_norm_net<fnn::fused, fnn::gelu>::plan,
                               pl::stages<pl::stage<pk::dense_ln_act, 0, 3>, pl::stage<pk::dense_ln_act, 3, 3>,
                                          pl::stage<pk::dense_only, 6, 1>>>);
  static_assert(layer_norm_net<fnn::unfused, fnn::gelu>::plan::size == 7);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(dense_layer_norm_activation_matches_unfused, Act, epilogue_activations) {
  compare_training<layer_norm_net<fnn::fused, Act>, layer_norm_net<fnn::unfused, Act>>(37, 4);
}

BOOST_AUTO_TEST_CASE(dense_layer_norm_activation_batches_widths_threads) {
  using namespace fnn;
  for (index_t batch : {1, 2, 15, 130})
    compare_training<layer_norm_net<fused, relu>, layer_norm_net<unfused, relu>>(batch, 6);
  using wide_f = network<fused, float, input<9>, dense<1>, layer_norm, swish, dense<129>, layer_norm, fnn::tanh, dense<3>>;
  using wide_u = network<unfused, float, input<9>, dense<1>, layer_norm, swish, dense<129>, layer_norm, fnn::tanh, dense<3>>;
  compare_training<wide_f, wide_u>(21, 8);
  // Big enough for two threads in every pass: the same bits at 1 and 2 threads.
  using big_t = network<fused, float, input<23>, dense<261>, layer_norm, gelu, dense<11>>;
  const index_t batch = 520;
  std::vector<std::vector<float>> runs[2];
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    big_t net{seed{41}};
    auto& out = runs[threads - 1];
    for (int step = 0; step < 2; ++step) {
      const auto x = random_matrix<float>(batch, 23, 42 + step, 1.5);
      const auto y = net.forward(x.view(), mode::train);
      out.emplace_back(y.data(), y.data() + y.size());
      fnn::matrix<float> g(batch, 11);
      loss::softmax_cross_entropy{}(y, random_labels(std::size_t(batch), 11, 50 + step), g.view());
      net.zero_grad();
      net.backward(g.view(), true);
      for (auto& v : grads_of(net)) out.push_back(std::move(v));
      out.emplace_back(net.input_gradient().data(), net.input_gradient().data() + net.input_gradient().size());
      fnn_test::plain_sgd{0.05}.step(net);
    }
  }
  set_num_threads(0);
  BOOST_REQUIRE_EQUAL(runs[0].size(), runs[1].size());
  for (std::size_t i = 0; i < runs[0].size(); ++i) {
    BOOST_TEST_INFO("array #" << i);
    BOOST_TEST((runs[0][i] == runs[1][i]));
  }
}

BOOST_AUTO_TEST_CASE(fused_stages_pass_gradient_checks_in_double) {
  using net_t = fnn::basic_sequential<double, fnn::input<5>, fnn::dense<7>, fnn::batch_norm, fnn::gelu, fnn::dense<6>,
                                      fnn::elu<1.0>, fnn::batch_norm, fnn::sigmoid, fnn::dense<3>>;
  static_assert(net_t::plan::size == 4);
  net_t net{fnn::seed{21}};
  const auto x = random_matrix<double>(6, 5, 22, 1.5);
  const auto labels = random_labels(6, 3, 23);
  for (auto m : {fnn::mode::train, fnn::mode::eval}) {
    const auto r = fnn::check_gradients(net, x.view(), labels, fnn::loss::softmax_cross_entropy{}, m);
    BOOST_TEST_INFO("worst " << r.worst << ": analytic " << r.worst_analytic << ", numeric " << r.worst_numeric);
    BOOST_TEST(r.max_relative_error < 1e-6);
  }
  using ln_t = fnn::basic_sequential<double, fnn::input<5>, fnn::dense<7>, fnn::layer_norm, fnn::gelu, fnn::dense<3>>;
  static_assert(ln_t::plan::size == 2);
  ln_t ln{fnn::seed{24}};
  const auto r = fnn::check_gradients(ln, x.view(), labels, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
  BOOST_TEST_INFO("worst " << r.worst << ": analytic " << r.worst_analytic << ", numeric " << r.worst_numeric);
  BOOST_TEST(r.max_relative_error < 1e-6);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(vectorized_activations)

// f and f' evaluated through simd::batch<float> (or the scalar fallback) against <cmath> in double,
// on a fine grid over [-10, 10]. Error of f: |a - ref| / max(|ref|, 1e-5) (relative, absolute near
// zero). Error of f': |a - ref| / max(|ref|, 1): derivatives formed from y = f(x) (sigmoid's y (1 - y),
// tanh's 1 - y^2) cancel in float where f saturates, so only their absolute accuracy is meaningful.
template <class Fn, class Ref, class DRef>
void check_accuracy(Ref ref, DRef dref, double tol_f, double tol_df) {
  constexpr std::size_t w = fnn::simd::width<float>;
  const std::size_t n = 20001 / w * w;
  std::vector<float> x(n), y(n), dy(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = -10.0f + 20.0f * float(i) / float(n - 1);
  for (std::size_t i = 0; i < n; i += w) {
    if constexpr (fnn::simd::enabled) {
      const auto v = fnn::simd::load(x.data() + i);
      const auto fv = Fn::f(v);
      fnn::simd::store(y.data() + i, fv);
      fnn::simd::store(dy.data() + i, Fn::df(v, fv));
    } else {
      y[i] = Fn::f(x[i]);
      dy[i] = Fn::df(x[i], y[i]);
    }
  }
  double worst_f = 0, worst_df = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double xr = double(x[i]);
    worst_f = std::max(worst_f, std::abs(double(y[i]) - ref(xr)) / std::max(std::abs(ref(xr)), 1e-5));
    worst_df = std::max(worst_df, std::abs(double(dy[i]) - dref(xr)) / std::max(std::abs(dref(xr)), 1.0));
  }
  BOOST_TEST_MESSAGE(Fn::name << ": max error f " << worst_f << ", f' " << worst_df);
  BOOST_TEST(worst_f < tol_f);
  BOOST_TEST(worst_df < tol_df);
}

BOOST_AUTO_TEST_CASE(accuracy_against_double) {
  using namespace fnn::act;
  auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); };
  auto Phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  check_accuracy<gelu_fn>([&](double x) { return x * Phi(x); }, [&](double x) { return Phi(x) + x * phi(x); }, 4e-6,
                          4e-6);
  auto tg = [](double x) { return std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)); };
  check_accuracy<gelu_tanh_fn>(
      [&](double x) { return 0.5 * x * (1 + tg(x)); },
      [&](double x) {
        return 0.5 * (1 + tg(x)) + 0.5 * x * (1 - tg(x) * tg(x)) * std::sqrt(2 / M_PI) * (1 + 3 * 0.044715 * x * x);
      },
      4e-5, 4e-5);
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  check_accuracy<sigmoid_fn>(sig, [&](double x) { return sig(x) * (1 - sig(x)); }, 4e-6, 4e-6);
  check_accuracy<swish_fn>([&](double x) { return x * sig(x); },
                           [&](double x) { return sig(x) * (1 + x * (1 - sig(x))); }, 4e-6, 4e-6);
  check_accuracy<tanh_fn>([](double x) { return std::tanh(x); },
                          [](double x) { return 1 - std::tanh(x) * std::tanh(x); }, 4e-6, 4e-6);
  check_accuracy<elu_fn<1.0>>([](double x) { return x > 0 ? x : std::expm1(x); },
                              [](double x) { return x > 0 ? 1.0 : std::exp(x); }, 4e-6, 4e-6);
  const double a = selu_fn::alpha, s = selu_fn::scale;
  check_accuracy<selu_fn>([&](double x) { return x > 0 ? s * x : s * a * std::expm1(x); },
                          [&](double x) { return x > 0 ? s : s * a * std::exp(x); }, 4e-6, 4e-6);
  check_accuracy<relu_fn>([](double x) { return x > 0 ? x : 0.0; }, [](double x) { return x > 0 ? 1.0 : 0.0; }, 1e-7,
                          1e-7);
  check_accuracy<leaky_relu_fn<0.1>>([](double x) { return x > 0 ? x : 0.1 * x; },
                                     [](double x) { return x > 0 ? 1.0 : 0.1; }, 1e-7, 1e-7);
}

BOOST_AUTO_TEST_SUITE_END()
