// NaN semantics against PyTorch (torch 1.13): NaN in gives NaN out through every activation, scalar and
// vector, reference layers and fused epilogues; backward at x = NaN gives what torch's backward gives; maxout
// and PReLU follow torch.max / torch's prelu backward; and train_step makes a non-finite loss or gradient
// visible. Also built with FNN_FORCE_SCALAR (fnn_network_tests_scalar).
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/optim/sgd.hpp"
#include "fnn/simd/math.hpp"
#include "fnn/simd/simd.hpp"
#include "helpers.hpp"

namespace {

using fnn_test::random_matrix;

template <class T>
constexpr T nan_v = std::numeric_limits<T>::quiet_NaN();

// Lane 0 of a vector (or the scalar itself).
template <class V>
auto first_lane(const V& v) {
  if constexpr (std::is_arithmetic_v<V>) return v;
  else return v.get(0);
}

// Fn at NaN in V (a scalar, or a register whose lane 0 is NaN and whose other lanes are ordinary): f(NaN) is
// NaN; the gradient at x = NaN with dy = 1 is `dx_at_nan` (NaN meaning NaN); at x = -1 with dy = NaN it is
// NaN, except for relu whose backward is a select (0).
template <class Fn, class V>
void check_functor(double dx_at_nan, bool zero_for_nan_dy_left) {
  using T = fnn::simd::scalar_of_t<V>;
  constexpr std::size_t lanes = fnn::simd::lanes_v<V>;
  T xs[lanes];
  for (std::size_t i = 0; i < lanes; ++i) xs[i] = T(0.5) * T(i) - T(1);
  xs[0] = nan_v<T>;
  const V x = fnn::simd::load_as<V>(xs);
  const V y = Fn::f(x);
  BOOST_TEST(std::isnan(first_lane(y)));
  const T dx = first_lane(fnn::simd::activation_gradient<Fn>(x, y, V(T(1))));
  if (std::isnan(dx_at_nan)) BOOST_TEST(std::isnan(dx));
  else BOOST_TEST(dx == T(dx_at_nan), boost::test_tools::tolerance(T(1e-6)));
  // The other lanes are unaffected by the NaN next to them.
  if constexpr (lanes > 1) {
    T ys[lanes];
    fnn::simd::store_as(ys, y);
    for (std::size_t i = 1; i < lanes; ++i)
      BOOST_TEST(std::abs(ys[i] - Fn::f(xs[i])) <= T(1e-5) * (T(1) + std::abs(Fn::f(xs[i]))), "lane " << i);
  }
  const V left = V(T(-1));
  const T dleft = first_lane(fnn::simd::activation_gradient<Fn>(left, Fn::f(left), V(nan_v<T>)));
  if (zero_for_nan_dy_left) BOOST_TEST(dleft == T(0));
  else BOOST_TEST(std::isnan(dleft));
}

template <class Fn>
void check_functor_everywhere(double dx_at_nan, bool zero_for_nan_dy_left = false) {
  BOOST_TEST_CONTEXT(Fn::name) {
    check_functor<Fn, float>(dx_at_nan, zero_for_nan_dy_left);
    check_functor<Fn, double>(dx_at_nan, zero_for_nan_dy_left);
    if constexpr (fnn::simd::enabled) {
      check_functor<Fn, fnn::simd::batch<float>>(dx_at_nan, zero_for_nan_dy_left);
      check_functor<Fn, fnn::simd::batch<double>>(dx_at_nan, zero_for_nan_dy_left);
    }
  }
}

using epilogue_activations = boost::mpl::list<fnn::sigmoid, fnn::tanh, fnn::relu, fnn::leaky_relu<0.1>,
                                              fnn::elu<1.0>, fnn::selu, fnn::gelu, fnn::gelu_tanh, fnn::swish>;

// A 3 x In batch whose row 1 holds one NaN.
template <std::size_t In>
fnn::matrix<float> batch_with_nan_row() {
  auto x = random_matrix<float>(3, fnn::index_t(In), 5);
  x(1, 2) = nan_v<float>;
  return x;
}

// Row 1 of y is all NaN, rows 0 and 2 are finite.
void expect_nan_row(fnn::const_matrix_view<float> y, const std::string& what) {
  BOOST_TEST_CONTEXT(what) {
    for (fnn::index_t j = 0; j < y.cols(); ++j) {
      BOOST_TEST(std::isnan(y(1, j)), "row 1, column " << j << " = " << y(1, j));
      BOOST_TEST(std::isfinite(y(0, j)));
      BOOST_TEST(std::isfinite(y(2, j)));
    }
  }
}

// Forward in eval (per-row) mode through the stage kinds that end in an activation epilogue.
template <class P, class Act>
void check_network_forward(const std::string& policy) {
  const auto x = batch_with_nan_row<6>();
  fnn::network<P, float, fnn::input<6>, fnn::dense<9>, Act, fnn::dense<4>> dense_act{fnn::seed{1}};
  expect_nan_row(dense_act.infer(x.view()).view(), policy + " dense + act, eval");
  expect_nan_row(dense_act.forward(x.view(), fnn::mode::train), policy + " dense + act, train");
  fnn::network<P, float, fnn::input<6>, fnn::dense<9>, fnn::batch_norm, Act, fnn::dense<4>> dense_bn_act{fnn::seed{2}};
  expect_nan_row(dense_bn_act.infer(x.view()).view(), policy + " dense + batch_norm + act, eval");
  fnn::network<P, float, fnn::input<6>, fnn::batch_norm, Act, fnn::dense<4>> bn_act{fnn::seed{3}};
  expect_nan_row(bn_act.infer(x.view()).view(), policy + " batch_norm + act, eval");
  // Backward: the NaN reaches the first layer's weight gradient through x itself (dW = du^T x). The input
  // gradient of row 1 is NaN or not as in torch (finite for relu, whose backward at NaN passes dy).
  fnn::matrix<float> dy(3, 4);
  for (float& v : dy.flat()) v = 1.f;
  dense_act.forward(x.view(), fnn::mode::train);
  dense_act.zero_grad();
  dense_act.backward(dy.view(), true);
  BOOST_TEST(std::isnan(dense_act.grad_norm()), policy);
  BOOST_TEST(std::isfinite(dense_act.input_gradient()(0, 0)), policy);
}


// ---- live parity: torch_nan.py prints torch's values, NaN included ----------------------------------------

// Lines of torch_nan.py keyed by their name ("relu", "maxout", ...); empty when torch cannot be imported.
std::map<std::string, std::vector<double>> torch_nan_table() {
  std::map<std::string, std::vector<double>> t;
  const std::string python = FNN_TEST_PYTHON;
  if (python.empty() || std::system((python + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) return t;
  const std::string cmd = python + " " FNN_SOURCE_DIR "/tests/unit/network/torch_nan.py";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return t;
  std::string out;
  char buf[4096];
  for (std::size_t got; (got = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, got);
  BOOST_REQUIRE_MESSAGE(pclose(p) == 0, cmd << " failed");
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream in(line);
    std::string kind, name, token;
    in >> kind;
    if (kind == "act") in >> name;
    else name = kind;
    auto& values = t[name];
    while (in >> token) values.push_back(std::strtod(token.c_str(), nullptr));  // strtod reads "nan"
  }
  return t;
}

// Same NaN-ness, and close values where finite.
void expect_like_torch(double got, double want, double tol, const std::string& what) {
  BOOST_TEST_CONTEXT(what << ": fnn " << got << ", torch " << want) {
    if (std::isnan(want)) BOOST_TEST(std::isnan(got));
    else BOOST_TEST(std::abs(got - want) <= tol * (1 + std::abs(want)));
  }
}

// Act at x = [nan, -1, 1.5]: the double reference layer (forward, backward with dy = 1), the vectorized float
// functor, and the gradient at x = -1 for dy = NaN, against torch's line for it.
template <class Act>
void check_against_torch(const std::vector<double>& t, const std::string& name) {
  BOOST_REQUIRE_EQUAL(t.size(), 7u);
  using Fn = typename Act::function;
  const double xs[3] = {nan_v<double>, -1, 1.5};
  fnn::network<fnn::unfused, double, fnn::input<3>, Act> net;
  fnn::matrix<double> x(1, 3), dy(1, 3);
  std::copy(xs, xs + 3, x.data());
  for (double& d : dy.flat()) d = 1;
  const auto y = net.forward(x.view(), fnn::mode::train);
  for (fnn::index_t j = 0; j < 3; ++j) expect_like_torch(y(0, j), t[std::size_t(j)], 1e-12, name + " y" + std::to_string(j));
  net.backward(dy.view(), true);
  for (fnn::index_t j = 0; j < 3; ++j)
    expect_like_torch(net.input_gradient()(0, j), t[std::size_t(3 + j)], 1e-12, name + " dx" + std::to_string(j));
  using V = std::conditional_t<fnn::simd::enabled, fnn::simd::batch<float>, float>;
  float xf[fnn::simd::lanes_v<V>];
  for (std::size_t i = 0; i < fnn::simd::lanes_v<V>; ++i) xf[i] = float(xs[i % 3]);
  const V xv = fnn::simd::load_as<V>(xf), yv = Fn::f(xv), dv = fnn::simd::activation_gradient<Fn>(xv, yv, V(1.f));
  float yf[fnn::simd::lanes_v<V>], df[fnn::simd::lanes_v<V>];
  fnn::simd::store_as(yf, yv);
  fnn::simd::store_as(df, dv);
  for (std::size_t i = 0; i < fnn::simd::lanes_v<V>; ++i) {
    expect_like_torch(yf[i], t[i % 3], 1e-5, name + " float y, lane " + std::to_string(i));
    expect_like_torch(df[i], t[3 + i % 3], 1e-5, name + " float dx, lane " + std::to_string(i));
  }
  const double dleft = fnn::simd::activation_gradient<Fn>(-1.0, Fn::f(-1.0), nan_v<double>);
  expect_like_torch(dleft, t[6], 1e-12, name + " dx at -1 for dy = NaN");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(nan_semantics)

// The backward values at x = NaN are torch's: relu 1 (threshold_backward passes dy), leaky_relu the slope,
// elu 1 and selu its scale (the x <= 0 branch is not taken), NaN for the rest; torch.relu's backward gives 0
// at x = -1 even for dy = NaN. Printed by torch 1.13: F.relu(x).backward() etc. with x = [nan, 1, -1].
BOOST_AUTO_TEST_CASE(every_activation_functor_scalar_and_vector) {
  namespace act = fnn::act;
  const double nan = nan_v<double>;
  check_functor_everywhere<act::relu_fn>(1.0, true);
  check_functor_everywhere<act::leaky_relu_fn<0.2>>(0.2);
  check_functor_everywhere<act::elu_fn<1.0>>(1.0);
  check_functor_everywhere<act::selu_fn>(1.0507009873554805);
  check_functor_everywhere<act::gelu_fn>(nan);
  check_functor_everywhere<act::gelu_tanh_fn>(nan);
  check_functor_everywhere<act::swish_fn>(nan);
  check_functor_everywhere<act::sigmoid_fn>(nan);
  check_functor_everywhere<act::tanh_fn>(nan);
}

// The same against torch itself, when Debian's python3-torch is there (otherwise the test says it skipped).
BOOST_AUTO_TEST_CASE(matches_torch_live) {
  const auto t = torch_nan_table();
  if (t.empty()) {
    BOOST_TEST_MESSAGE("skipped: " FNN_TEST_PYTHON " cannot import torch");
    std::cout << "nan_semantics/matches_torch_live: skipped, torch not found\n";
    return;
  }
  check_against_torch<fnn::relu>(t.at("relu"), "relu");
  check_against_torch<fnn::leaky_relu<0.1>>(t.at("leaky_relu"), "leaky_relu");
  check_against_torch<fnn::elu<1.0>>(t.at("elu"), "elu");
  check_against_torch<fnn::selu>(t.at("selu"), "selu");
  check_against_torch<fnn::gelu>(t.at("gelu"), "gelu");
  check_against_torch<fnn::gelu_tanh>(t.at("gelu_tanh"), "gelu_tanh");
  check_against_torch<fnn::swish>(t.at("swish"), "swish");
  check_against_torch<fnn::sigmoid>(t.at("sigmoid"), "sigmoid");
  check_against_torch<fnn::tanh>(t.at("tanh"), "tanh");

  const auto& mo = t.at("maxout");
  BOOST_REQUIRE_EQUAL(mo.size(), 12u);
  fnn::basic_sequential<double, fnn::input<9>, fnn::maxout<3>> maxout;
  fnn::matrix<double> x(1, 9), dy(1, 3);
  const double v[] = {1, nan_v<double>, 3, nan_v<double>, 2, nan_v<double>, 1, 5, 2};
  std::copy(v, v + 9, x.data());
  dy(0, 0) = 10, dy(0, 1) = 20, dy(0, 2) = 30;
  const auto y = maxout.forward(x.view(), fnn::mode::train);
  for (fnn::index_t j = 0; j < 3; ++j) expect_like_torch(y(0, j), mo[std::size_t(j)], 0, "maxout y" + std::to_string(j));
  maxout.backward(dy.view(), true);
  for (fnn::index_t j = 0; j < 9; ++j)
    expect_like_torch(maxout.input_gradient()(0, j), mo[std::size_t(3 + j)], 0, "maxout dx" + std::to_string(j));

  const auto& pr = t.at("prelu");
  BOOST_REQUIRE_EQUAL(pr.size(), 7u);
  fnn::basic_sequential<double, fnn::input<3>, fnn::prelu> prelu;
  fnn::matrix<double> xp(1, 3), ones(1, 3);
  xp(0, 0) = nan_v<double>, xp(0, 1) = -1, xp(0, 2) = 1.5;
  for (double& d : ones.flat()) d = 1;
  const auto yp = prelu.forward(xp.view(), fnn::mode::train);
  prelu.zero_grad();
  prelu.backward(ones.view(), true);
  for (fnn::index_t j = 0; j < 3; ++j) {
    expect_like_torch(yp(0, j), pr[std::size_t(j)], 0, "prelu y" + std::to_string(j));
    expect_like_torch(prelu.input_gradient()(0, j), pr[std::size_t(3 + j)], 0, "prelu dx" + std::to_string(j));
  }
  prelu.for_each_parameter([&](auto& p) { expect_like_torch(p.grad[0], pr[6], 0, "prelu da"); });
}

BOOST_AUTO_TEST_CASE(relu_keeps_negative_zero_as_torch) {
  // torch.relu(torch.tensor([-0.])) is tensor([-0.]): clamp_min keeps x unless x < 0.
  BOOST_TEST(std::signbit(fnn::act::relu_fn::f(-0.f)));
  BOOST_TEST(fnn::act::relu_fn::f(-1.f) == 0.f);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(fused_and_reference_networks_propagate_nan, Act, epilogue_activations) {
  check_network_forward<fnn::fused, Act>("fused");
  check_network_forward<fnn::unfused, Act>("unfused");
}

// torch.max over a group: NaN is the maximum, and the gradient goes to the first NaN
// (torch.tensor([[1., nan, 3.], [nan, 2., 1.]]).max(dim=1) gives values [nan, nan], indices [1, 0]).
BOOST_AUTO_TEST_CASE(maxout_propagates_nan_like_torch_max) {
  fnn::basic_sequential<double, fnn::input<9>, fnn::maxout<3>> net;
  fnn::matrix<double> x(1, 9);
  const double v[] = {1, nan_v<double>, 3, nan_v<double>, 2, nan_v<double>, 1, 5, 2};
  std::copy(v, v + 9, x.data());
  const auto y = net.forward(x.view(), fnn::mode::train);
  BOOST_TEST(std::isnan(y(0, 0)));
  BOOST_TEST(std::isnan(y(0, 1)));
  BOOST_TEST(y(0, 2) == 5.0);
  fnn::matrix<double> dy(1, 3);
  dy(0, 0) = 10, dy(0, 1) = 20, dy(0, 2) = 30;
  net.backward(dy.view(), true);
  const double want[] = {0, 10, 0, 20, 0, 0, 0, 30, 0};
  for (fnn::index_t j = 0; j < 9; ++j) BOOST_TEST(net.input_gradient()(0, j) == want[j], "piece " << j);
}

// torch: F.prelu(x, a) with x = [nan, -1, 2], a = 0.25: y = [nan, -0.25, 2]; backward with dy = 1 gives
// x.grad = [0.25, 0.25, 1] and a.grad = nan.
BOOST_AUTO_TEST_CASE(prelu_slope_gradient_sees_nan) {
  fnn::basic_sequential<double, fnn::input<3>, fnn::prelu> net;
  fnn::matrix<double> x(1, 3);
  x(0, 0) = nan_v<double>, x(0, 1) = -1, x(0, 2) = 2;
  const auto y = net.forward(x.view(), fnn::mode::train);
  BOOST_TEST(std::isnan(y(0, 0)));
  BOOST_TEST(y(0, 1) == -0.25);
  fnn::matrix<double> dy(1, 3);
  for (double& d : dy.flat()) d = 1;
  net.zero_grad();
  net.backward(dy.view(), true);
  BOOST_TEST(net.input_gradient()(0, 0) == 0.25);
  BOOST_TEST(net.input_gradient()(0, 1) == 0.25);
  BOOST_TEST(net.input_gradient()(0, 2) == 1.0);
  net.for_each_parameter([](auto& p) { BOOST_TEST(std::isnan(p.grad[0])); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(train_step_reports)

// A NaN in one input row: relu used to zero it, so the loss looked finite while the first layer's weights
// went to -inf. Now the loss is NaN, the step says so, and the weights hold NaN, never infinity.
BOOST_AUTO_TEST_CASE(nan_input_row_is_visible) {
  fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::relu, fnn::dense<3>> net{fnn::seed{4}};
  auto x = random_matrix<float>(6, 4, 8);
  x(2, 1) = nan_v<float>;
  fnn::optim::sgd opt({.lr = 0.1f});
  const fnn::train_stats<float> st = net.train_step(x.view(), fnn_test::random_labels(6, 3, 9),
                                                    fnn::loss::softmax_cross_entropy{}, opt);
  BOOST_TEST(!st.finite);
  BOOST_TEST(std::isnan(st.loss));
  BOOST_TEST(std::isnan(st.grad_norm));
  bool some_nan = false;
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) {
    for (float w : p.value) {
      BOOST_TEST(!std::isinf(w), p.name());
      some_nan = some_nan || std::isnan(w);
    }
  });
  BOOST_TEST(some_nan);
}

// An infinite input saturates the sigmoid: the loss stays finite, but dW = du^T x has 0 * inf = NaN (as in
// torch). Only the gradient norm shows it.
BOOST_AUTO_TEST_CASE(finite_loss_with_nan_gradient_is_visible) {
  fnn::sequential<fnn::input<2>, fnn::dense<4>, fnn::sigmoid, fnn::dense<2>> net{fnn::seed{5}};
  auto x = random_matrix<float>(4, 2, 10);
  x(0, 0) = std::numeric_limits<float>::infinity();
  fnn_test::plain_sgd sgd{0.1};
  const auto st = net.train_step(x.view(), fnn_test::random_labels(4, 2, 11), fnn::loss::softmax_cross_entropy{}, sgd);
  BOOST_TEST(std::isfinite(st.loss));
  BOOST_TEST(std::isnan(st.grad_norm));
  BOOST_TEST(!st.finite);
}

BOOST_AUTO_TEST_CASE(ordinary_step_reports_loss_and_gradient_norm) {
  fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::gelu, fnn::dense<3>> net{fnn::seed{6}};
  const auto x = random_matrix<float>(6, 4, 12);
  const auto labels = fnn_test::random_labels(6, 3, 13);
  fnn_test::plain_sgd sgd{0.0};  // lr 0: the step changes nothing, so the loss can be recomputed
  const auto st = net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, sgd);
  BOOST_TEST(st.finite);
  double total = 0;  // the gradients are still those of the step (the optimizer does not zero them)
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) {
    for (float g : p.grad) total += double(g) * double(g);
  });
  BOOST_TEST(total > 0);
  BOOST_TEST(st.grad_norm == std::sqrt(total), boost::test_tools::tolerance(1e-5));
  const float loss = net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, sgd);  // converts
  BOOST_TEST(loss == st.loss);
  double sum = 0;
  sum += net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, sgd);  // as examples/ accumulate
  BOOST_TEST(sum == double(st.loss));
}

BOOST_AUTO_TEST_SUITE_END()
