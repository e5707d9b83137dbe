// Transfer learning: frozen layers and parameters (network::freeze, freeze_layers, freeze_parameter). A frozen
// parameter gets no gradient and no optimizer update (weight decay included); a frozen batch_norm normalizes with its
// running statistics in train mode and leaves them alone; freezing changes no other gradient; fused and unfused
// policies agree; backward stops below the first layer that trains.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/optim/adam.hpp"
#include "helpers.hpp"

namespace {

using fnn_test::random_labels;
using fnn_test::random_matrix;

template <class Net>
std::vector<std::vector<float>> values_of(Net &net) {
  std::vector<std::vector<float>> v;
  net.for_each_parameter([&](auto &p) { v.emplace_back(p.value.begin(), p.value.end()); });
  return v;
}
template <class Net>
std::vector<std::vector<double>> grads_of(Net &net) {
  std::vector<std::vector<double>> g;
  net.for_each_parameter([&](auto &p) { g.emplace_back(p.grad.begin(), p.grad.end()); });
  return g;
}
template <class Net>
std::vector<std::string> names_of(Net &net) {
  std::vector<std::string> n;
  net.for_each_parameter([&](auto &p) { n.push_back(p.name()); });
  return n;
}
template <class Net>
std::vector<double> buffers_of(Net &net, fnn::index_t module) {
  std::vector<double> b;
  net.for_each_buffer([&](auto &r) {
    if (r.module != module) return;
    if (r.counter)
      b.push_back(double(*r.counter));
    else
      b.insert(b.end(), r.value.begin(), r.value.end());
  });
  return b;
}

bool bit_identical(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

double max_scaled_difference(const std::vector<double> &a, const std::vector<double> &b) {
  double d = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return d / scale;
}

template <class Net>
void train_steps(Net &net, int steps, std::uint32_t seed) {
  fnn_test::plain_sgd sgd{0.05};
  for (int s = 0; s < steps; ++s) {
    const auto x = random_matrix<float>(24, fnn::index_t(Net::in_features), seed + std::uint32_t(s), 1.5);
    const auto y = random_labels(24, int(Net::out_features), seed + 100 + std::uint32_t(s));
    net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, sgd);
  }
}

template <class P>
using mlp = fnn::network<P, float, fnn::input<20>, fnn::dense<16>, fnn::batch_norm, fnn::gelu, fnn::dense<12>,
                         fnn::batch_norm, fnn::gelu, fnn::dense<5>>;
using policies = boost::mpl::list<fnn::fused, fnn::unfused>;

BOOST_AUTO_TEST_CASE_TEMPLATE(frozen_layers_keep_their_bits_under_adamw_with_weight_decay, P, policies) {
  mlp<P> net{fnn::seed{3}};
  train_steps(net, 2, 11);  // running statistics away from their initial 0 / 1
  net.freeze_layers(0, 3);  // the first dense + batch_norm + gelu stage
  BOOST_TEST(net.is_frozen(0));
  BOOST_TEST(net.is_frozen(1));
  BOOST_TEST(!net.is_frozen(3));
  BOOST_TEST(net.is_parameter_frozen("1.bias"));
  BOOST_TEST(!net.is_parameter_frozen("3.weight"));
  const auto before = values_of(net);
  const auto names = names_of(net);
  const auto stats1 = buffers_of(net, 1), stats4 = buffers_of(net, 4);
  fnn::optim::adamw opt{{.lr = 1e-2f, .weight_decay = 0.5f, .decay = fnn::optim::decay_policy::all}};
  for (int s = 0; s < 5; ++s) {
    const auto x = random_matrix<float>(32, 20, 40 + std::uint32_t(s), 1.5);
    const auto y = random_labels(32, 5, 50 + std::uint32_t(s));
    net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt, fnn::penalty::l2{1e-2});
    const auto g = grads_of(net);
    for (std::size_t k = 0; k < 4; ++k) {  // 0.weight, 0.bias, 1.weight, 1.bias: no gradient, not even the L2
      BOOST_TEST_INFO(names[k]);
      for (double v : g[k]) BOOST_TEST(v == 0.0);
    }
  }
  const auto after = values_of(net);
  for (std::size_t k = 0; k < after.size(); ++k) {
    BOOST_TEST_INFO(names[k]);
    if (k < 4)
      BOOST_TEST(bit_identical(after[k], before[k]));
    else if (names[k] != "3.bias")
      BOOST_TEST(!bit_identical(after[k], before[k]));  // 3.bias: 0 before batch norm
  }
  BOOST_TEST((buffers_of(net, 1) == stats1));  // frozen: statistics (and num_batches_tracked) fixed
  BOOST_TEST((buffers_of(net, 4) != stats4));
  // Unfrozen, every parameter trains again, and the batch norm updates its statistics.
  net.unfreeze_all();
  BOOST_TEST(!net.is_frozen(1));
  const auto x = random_matrix<float>(32, 20, 77, 1.5);
  net.train_step(x.view(), random_labels(32, 5, 78), fnn::loss::softmax_cross_entropy{}, opt);
  BOOST_TEST(!bit_identical(values_of(net)[0], before[0]));
  BOOST_TEST((buffers_of(net, 1) != stats1));
}

// In train mode a frozen batch_norm is the eval-mode normalization (torch: BatchNorm1d.eval() in a training model),
// forward and backward.
BOOST_AUTO_TEST_CASE_TEMPLATE(frozen_batch_norm_normalizes_with_its_running_statistics, P, policies) {
  mlp<P> net{fnn::seed{5}};
  train_steps(net, 3, 21);
  net.freeze(1);
  net.freeze(4);
  const auto stats1 = buffers_of(net, 1), stats4 = buffers_of(net, 4);
  const auto x = random_matrix<float>(40, 20, 61, 1.5);  // above the GEMV rows: eval runs the same GEMM
  const fnn::matrix<float> eval = net.infer(x.view());
  const auto train = net.forward(x.view(), fnn::mode::train);
  for (fnn::index_t i = 0; i < train.rows(); ++i)
    for (fnn::index_t j = 0; j < train.cols(); ++j)
      BOOST_TEST(std::abs(train(i, j) - eval(i, j)) <= 1e-6f * (1 + std::abs(eval(i, j))));
  const auto y = random_labels(40, 5, 62);
  fnn_test::plain_sgd sgd{0.05};
  net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, sgd);
  BOOST_TEST((buffers_of(net, 1) == stats1));
  BOOST_TEST((buffers_of(net, 4) == stats4));
}

// Freezing W of a layer changes no other gradient: the forward is the same, only dW is not computed.
BOOST_AUTO_TEST_CASE_TEMPLATE(freezing_changes_no_other_gradient, P, policies) {
  for (const char *frozen : {"0.weight", "0.bias", "3.weight", "6.bias"}) {
    mlp<P> a{fnn::seed{9}}, b{fnn::seed{9}};
    train_steps(a, 2, 31);
    train_steps(b, 2, 31);
    b.freeze_parameter(frozen);
    if (std::string(frozen) == "0.weight") b.freeze(0);  // the whole dense layer: its bias too
    const auto x = random_matrix<float>(30, 20, 33, 1.5);
    const auto y = random_labels(30, 5, 34);
    a.compute_gradients(x.view(), y, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
    b.compute_gradients(x.view(), y, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
    const auto ga = grads_of(a), gb = grads_of(b);
    const auto names = names_of(a);
    for (std::size_t k = 0; k < ga.size(); ++k) {
      BOOST_TEST_INFO(frozen << " frozen, " << names[k]);
      if (b.is_parameter_frozen(names[k])) {
        for (double g : gb[k]) BOOST_TEST(g == 0.0);
      } else {
        BOOST_TEST(max_scaled_difference(gb[k], ga[k]) < 1e-6);
      }
    }
  }
}

// The layers that only have a reference path: group_norm's affine and prelu's slope.
BOOST_AUTO_TEST_CASE(frozen_group_norm_and_prelu_take_no_gradient) {
  using net_t = fnn::sequential<fnn::input<8>, fnn::dense<8>, fnn::group_norm<2>, fnn::prelu, fnn::dense<3>>;
  net_t a{fnn::seed{6}}, b{fnn::seed{6}};
  b.freeze(1);
  b.freeze(2);
  const auto x = random_matrix<float>(9, 8, 7, 1.5);
  const auto y = random_labels(9, 3, 8);
  a.compute_gradients(x.view(), y, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
  b.compute_gradients(x.view(), y, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
  const auto ga = grads_of(a), gb = grads_of(b);
  const auto names = names_of(a);  // 0.weight 0.bias 1.weight 1.bias 2.weight 3.weight 3.bias
  BOOST_TEST_REQUIRE(names.size() == 7u);
  for (std::size_t k = 0; k < ga.size(); ++k) {
    BOOST_TEST_INFO(names[k]);
    if (k >= 2 && k <= 4) {
      BOOST_TEST(b.is_parameter_frozen(names[k]));
      for (double v : gb[k]) BOOST_TEST(v == 0.0);
      BOOST_TEST(max_scaled_difference(ga[k], std::vector<double>(ga[k].size(), 0.0)) > 0.0);
    } else {
      BOOST_TEST(max_scaled_difference(gb[k], ga[k]) < 1e-6);
    }
  }
}

// Every fused stage kind with frozen parts against the unfused policy: outputs, gradients, input gradients, running
// statistics. Plan: dense_bn_act(0), dense_ln_act(3), bn_act(6), dense_act(8), dense_only(10).
template <class P>
using every_stage =
    fnn::network<P, float, fnn::input<13>, fnn::dense<11>, fnn::batch_norm, fnn::relu, fnn::dense<9>, fnn::layer_norm,
                 fnn::gelu, fnn::batch_norm, fnn::tanh, fnn::dense<7>, fnn::swish, fnn::dense<3>>;
static_assert(std::is_same_v<every_stage<fnn::fused>::plan,
                             fnn::plan::stages<fnn::plan::stage<fnn::plan::stage_kind::dense_bn_act, 0, 3>,
                                               fnn::plan::stage<fnn::plan::stage_kind::dense_ln_act, 3, 3>,
                                               fnn::plan::stage<fnn::plan::stage_kind::bn_act, 6, 2>,
                                               fnn::plan::stage<fnn::plan::stage_kind::dense_act, 8, 2>,
                                               fnn::plan::stage<fnn::plan::stage_kind::dense_only, 10, 1>>>);

template <class Net>
void apply_freezing(Net &net, int config) {
  switch (config) {
    case 0:
      net.freeze(1);
      break;  // batch norm of the dense_bn_act stage
    case 1:
      net.freeze(1);
      net.freeze_parameter("0.bias");
      break;  // ... and the bias it no longer cancels
    case 2:
      net.freeze(6);
      break;  // bn_act
    case 3:
      net.freeze(4);
      break;  // layer norm
    case 4:
      net.freeze_parameter("4.bias");
      net.freeze_parameter("3.bias");
      break;
    case 5:
      net.freeze(3);
      net.freeze_parameter("8.bias");
      net.freeze(10);
      break;
    case 6:
      net.freeze_layers(0, 8);
      break;  // only dense_act and dense_only train
    default:
      net.freeze_parameter("1.weight");
      net.freeze_parameter("6.bias");
      break;
  }
}

BOOST_AUTO_TEST_CASE(fused_and_unfused_agree_with_freezing) {
  for (int config = 0; config < 8; ++config) {
    for (bool want_input_gradient : {false, true}) {
      every_stage<fnn::fused> f{fnn::seed{17}};
      every_stage<fnn::unfused> u{fnn::seed{17}};
      train_steps(f, 2, 71);
      train_steps(u, 2, 71);
      apply_freezing(f, config);
      apply_freezing(u, config);
      for (int step = 0; step < 2; ++step) {
        BOOST_TEST_INFO("config " << config << " step " << step << " input gradient " << want_input_gradient);
        const auto x = random_matrix<float>(29, 13, 80 + std::uint32_t(step), 1.5);
        const auto yf = f.forward(x.view(), fnn::mode::train);
        const auto yu = u.forward(x.view(), fnn::mode::train);
        std::vector<double> of(yf.data(), yf.data() + yf.size()), ou(yu.data(), yu.data() + yu.size());
        BOOST_TEST(max_scaled_difference(of, ou) < 1e-4);
        fnn::matrix<float> g(29, 3);
        fnn::loss::softmax_cross_entropy{}(yu, random_labels(29, 3, 90), g.view());
        f.zero_grad();
        u.zero_grad();
        f.backward(g.view(), want_input_gradient);
        u.backward(g.view(), want_input_gradient);
        const auto gf = grads_of(f), gu = grads_of(u);
        const auto names = names_of(f);
        for (std::size_t k = 0; k < gf.size(); ++k) {
          BOOST_TEST_INFO(names[k]);
          BOOST_TEST(max_scaled_difference(gf[k], gu[k]) < 2e-4);
          if (f.is_parameter_frozen(names[k]))
            for (double v : gf[k]) BOOST_TEST(v == 0.0);
        }
        if (want_input_gradient) {
          const auto xf = f.input_gradient(), xu = u.input_gradient();
          std::vector<double> a(xf.data(), xf.data() + xf.size()), b(xu.data(), xu.data() + xu.size());
          BOOST_TEST(max_scaled_difference(a, b) < 2e-4);
        }
        for (fnn::index_t m : {1, 6}) BOOST_TEST(max_scaled_difference(buffers_of(f, m), buffers_of(u, m)) < 1e-5);
        fnn_test::plain_sgd{0.05}.step(f);
        fnn_test::plain_sgd{0.05}.step(u);
      }
    }
  }
}

// The frozen batch-norm paths differentiated numerically, in double, train mode (fused and unfused).
template <class P>
using double_net = fnn::network<P, double, fnn::input<6>, fnn::dense<7>, fnn::batch_norm, fnn::gelu, fnn::dense<5>,
                                fnn::batch_norm, fnn::swish, fnn::batch_norm, fnn::tanh, fnn::dense<3>>;
BOOST_AUTO_TEST_CASE_TEMPLATE(frozen_batch_norm_gradients_match_central_differences, P, policies) {
  double_net<P> net{fnn::seed{4}};
  for (int s = 0; s < 3; ++s) {  // non-trivial running statistics
    const auto x = random_matrix<double>(16, 6, 5 + std::uint32_t(s), 1.5);
    net.forward(x.view(), fnn::mode::train);
  }
  net.freeze(1);
  net.freeze(4);
  net.freeze(6);
  const auto x = random_matrix<double>(10, 6, 9, 1.5);
  const auto r = fnn::check_gradients(net, x.view(), random_labels(10, 3, 10), fnn::loss::softmax_cross_entropy{},
                                      fnn::mode::train);
  BOOST_TEST_INFO("worst " << r.worst << ": analytic " << r.worst_analytic << ", numeric " << r.worst_numeric);
  BOOST_TEST(r.max_relative_error < 1e-6);
  BOOST_TEST(r.passed);
  BOOST_TEST(r.checked > 0u);
}

// An identity layer that counts its backward calls: backward must not reach it below the layers that train.
struct counting_identity final {
  using fnn_layer_spec = void;
  static constexpr fnn::layer_role role = fnn::layer_role::regularization;
  static inline int backward_calls = 0;
  template <class T, std::size_t, std::size_t In, class>
  struct layer final : fnn::stateless_layer {
    static constexpr std::size_t in_features = In, out_features = In;
    static constexpr std::string_view name = "counting_identity";
    void forward(fnn::const_matrix_view<T> x, fnn::matrix_view<T> y, fnn::mode, fnn::random_engine &) {
      for (fnn::index_t i = 0; i < x.rows(); ++i)
        for (fnn::index_t j = 0; j < x.cols(); ++j) y(i, j) = x(i, j);
    }
    void backward(fnn::const_matrix_view<T>, fnn::const_matrix_view<T>, fnn::const_matrix_view<T> dy,
                  fnn::matrix_view<T> dx, fnn::mode) {
      ++backward_calls;
      for (fnn::index_t i = 0; i < dx.rows(); ++i)
        for (fnn::index_t j = 0; j < dx.cols(); ++j) dx(i, j) = dy(i, j);
    }
  };
  template <class T, std::size_t I, std::size_t In, class H>
  using bind = layer<T, I, In, H>;
};

template <class P>
using counted = fnn::network<P, float, fnn::input<8>, counting_identity, fnn::dense<8>, fnn::batch_norm, fnn::gelu,
                             counting_identity, fnn::dense<6>, fnn::relu, fnn::dense<4>>;

BOOST_AUTO_TEST_CASE_TEMPLATE(backward_stops_below_the_first_layer_that_trains, P, policies) {
  counted<P> net{fnn::seed{2}};
  const auto x = random_matrix<float>(12, 8, 3, 1.0);
  const auto y = random_labels(12, 4, 4);
  const fnn::loss::softmax_cross_entropy ce;
  auto calls = [&](bool input_gradient) {
    counting_identity::backward_calls = 0;
    const auto out = net.forward(x.view(), fnn::mode::train);
    fnn::matrix<float> g(12, 4);
    ce(out, y, g.view());
    net.zero_grad();
    net.backward(g.view(), input_gradient);
    return counting_identity::backward_calls;
  };
  BOOST_TEST(calls(false) == 1);  // the identity at 4; the one at 0 has nothing below it to feed
  BOOST_TEST(calls(true) == 2);
  net.freeze(1);
  BOOST_TEST(calls(false) == 1);  // the batch norm at 2 trains: dX into the identity at 4 is needed
  net.freeze_parameter("2.weight");
  net.freeze_parameter("2.bias");  // its statistics still update: the forward is the unfrozen one
  BOOST_TEST(calls(false) == 0);   // nothing trains below layer 5: the backward ends there
  const auto g = grads_of(net);
  for (std::size_t k = 0; k < 4; ++k) BOOST_TEST(g[k][0] == 0.0);  // 1.weight ... 2.bias
  BOOST_TEST(std::abs(g[4][0]) > 0.0);                             // 5.weight still gets its gradient
  BOOST_TEST(calls(true) == 2);                                    // an input gradient still runs everything
  // The trained layers' gradients are those of the full backward.
  counted<P> full{fnn::seed{2}};
  full.compute_gradients(x.view(), y, ce, fnn::mode::train);
  net.compute_gradients(x.view(), y, ce, fnn::mode::train);
  const auto a = grads_of(net), b = grads_of(full);
  for (std::size_t k = 4; k < a.size(); ++k) BOOST_TEST(max_scaled_difference(a[k], b[k]) == 0.0);
}

BOOST_AUTO_TEST_CASE(freezing_errors_name_the_layer_or_parameter) {
  mlp<fnn::fused> net;
  auto message = [](auto &&f) -> std::string {
    try {
      f();
    } catch (const fnn::value_error &e) {
      return e.what();
    }
    return "no error";
  };
  BOOST_TEST(message([&] { net.freeze(7); }).find("freeze(7): the network has layers [0, 7)") != std::string::npos);
  BOOST_TEST(message([&] { net.freeze_layers(2, 8); }).find("freeze_layers(2, 8)") != std::string::npos);
  BOOST_TEST(message([&] { net.freeze_parameter("2.weight"); }).find("no parameter '2.weight'") != std::string::npos);
  BOOST_TEST(message([&] { (void)net.is_frozen(9); }).find("is_frozen(9)") != std::string::npos);
  // Unfreezing one parameter of a frozen layer keeps the rest frozen.
  net.freeze(1);
  net.unfreeze_parameter("1.bias");
  BOOST_TEST(net.is_parameter_frozen("1.weight"));
  BOOST_TEST(!net.is_parameter_frozen("1.bias"));
  BOOST_TEST(!net.is_frozen(1));
}

}  // namespace
