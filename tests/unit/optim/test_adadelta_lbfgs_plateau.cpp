// AdaDelta against a plain double-precision loop of torch's formula (torch/optim/adadelta.py, 1.13);
// L-BFGS on problems with known minimizers, through the span and the network closure API;
// reduce_lr_on_plateau on hand-made metric sequences; the new optimizers' state through
// io::save_training_state / load_training_state. (Trajectory parity with torch: tests/parity.)
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/optim/optim.hpp"

namespace opt = fnn::optim;
namespace tt = boost::test_tools;

namespace {

// torch's Adadelta step for one array, in double.
struct adadelta_ref {
  double lr, rho, eps, wd;
  bool maximize = false;
  std::vector<double> sq, acc;
  void step(std::vector<double>& p, const std::vector<double>& g) {
    if (sq.empty()) sq.assign(p.size(), 0), acc.assign(p.size(), 0);
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double d = (maximize ? -g[i] : g[i]) + wd * p[i];
      sq[i] = rho * sq[i] + (1 - rho) * d * d;
      const double delta = std::sqrt(acc[i] + eps) / std::sqrt(sq[i] + eps) * d;
      acc[i] = rho * acc[i] + (1 - rho) * delta * delta;
      p[i] -= lr * delta;
    }
  }
};

template <class T>
void adadelta_matches_reference(const opt::adadelta_options<T>& o, double tol) {
  std::mt19937 gen(3);
  std::normal_distribution<double> nd;
  const std::size_t n = 37;  // not a multiple of any register width: the scalar tail runs too
  std::vector<double> ref_p(n);
  for (auto& v : ref_p) v = nd(gen);
  std::vector<T> p(ref_p.begin(), ref_p.end());
  opt::basic_adadelta<T> a(o);
  adadelta_ref r{double(o.lr), double(o.rho), double(o.eps), double(o.weight_decay), o.maximize, {}, {}};
  for (int s = 0; s < 20; ++s) {
    std::vector<double> g(n);
    for (auto& v : g) v = T(nd(gen));
    const std::vector<T> gt(g.begin(), g.end());
    a.step(std::span<T>(p), std::span<const T>(gt));
    r.step(ref_p, g);
    for (std::size_t i = 0; i < n; ++i) BOOST_TEST(double(p[i]) == ref_p[i], tt::tolerance(tol));
  }
  BOOST_TEST(a.step_count() == 20);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(adadelta)

BOOST_AUTO_TEST_CASE(steps_match_reference) {
  adadelta_matches_reference<double>({}, 1e-12);
  adadelta_matches_reference<double>({.lr = 0.3, .rho = 0.95, .eps = 1e-4, .weight_decay = 0.1}, 1e-12);
  adadelta_matches_reference<double>({.lr = 2.0, .maximize = true}, 1e-12);
  adadelta_matches_reference<float>({.lr = 0.5f, .rho = 0.8f, .weight_decay = 0.01f}, 1e-5);
}

BOOST_AUTO_TEST_CASE(defaults_state_names_and_bad_options) {
  const opt::adadelta a;
  BOOST_TEST(a.options().lr == 1.0f);
  BOOST_TEST(a.options().rho == 0.9f);
  BOOST_TEST(a.options().eps == 1e-6f);
  BOOST_TEST(a.options().weight_decay == 0.0f);
  const auto names = a.state_names();
  BOOST_TEST_REQUIRE(names.size() == 2u);
  BOOST_TEST(names[0] == "square_avg");
  BOOST_TEST(names[1] == "acc_delta");
  BOOST_CHECK_THROW(opt::adadelta({.rho = 1.5f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adadelta({.eps = -1.0f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adadelta({.lr = -1.0f}), fnn::value_error);
  try {
    opt::adadelta({.rho = -0.5f});
    BOOST_ERROR("no exception");
  } catch (const fnn::value_error& e) {
    BOOST_TEST(std::string(e.what()).find("rho") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lbfgs)

namespace {
// f(x) = sum_i c_i (x_i - i)^2 / 2 + sum_i (x_i - x_{i+1})^2 / 2: convex, minimizer found by solving Ax = b.
struct chain_quadratic {
  std::vector<double>& x;
  std::vector<double>& g;
  int* calls;
  double operator()() const {
    ++*calls;
    const std::size_t n = x.size();
    double f = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double c = 1.0 + double(i % 3);
      f += 0.5 * c * (x[i] - double(i)) * (x[i] - double(i));
      g[i] = c * (x[i] - double(i));
    }
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const double d = x[i] - x[i + 1];
      f += 0.5 * d * d;
      g[i] += d;
      g[i + 1] -= d;
    }
    return f;
  }
};
double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double e : v) m = std::max(m, std::abs(e));
  return m;
}
}  // namespace

BOOST_AUTO_TEST_CASE(minimizes_a_quadratic_with_and_without_line_search) {
  for (auto ls : {opt::line_search::none, opt::line_search::strong_wolfe}) {
    std::vector<double> x(25, 0.0), g(25);
    int calls = 0;
    // tolerance_change 0: only the gradient test (or max_iter) can end the step, so it must reach max|g| <= 1e-7.
    opt::basic_lbfgs<double> l({.max_iter = 100, .tolerance_change = 0, .line_search_fn = ls});
    const chain_quadratic f{x, g, &calls};
    const double first = l.step(std::span<double>(x), std::span<const double>(g), f);
    f();
    BOOST_TEST_INFO("line search " << int(ls));
    BOOST_TEST(max_abs(g) <= 1e-7);  // the stationarity test (tolerance_grad 1e-7) ended it, not max_iter
    BOOST_TEST(first > 1000.0);      // step() returns the loss at the start
    BOOST_TEST(l.evaluations() == calls - 1);
    BOOST_TEST(l.iterations() < 100);
  }
}

BOOST_AUTO_TEST_CASE(history_is_capped_and_carries_over_between_steps) {
  std::vector<double> x(10, 3.0), g(10);
  int calls = 0;
  const chain_quadratic f{x, g, &calls};
  // (max_eval explicit: the default, max_iter * 5 / 4 = 2, would end each step after one iteration)
  opt::basic_lbfgs<double> l({.max_iter = 2, .max_eval = 10, .history_size = 3});
  l.step(std::span<double>(x), std::span<const double>(g), f);
  BOOST_TEST(l.history_length() == 1u);  // the first iteration is steepest descent: one pair after the second
  for (int k = 0; k < 4; ++k) l.step(std::span<double>(x), std::span<const double>(g), f);
  BOOST_TEST(l.history_length() == 3u);
  BOOST_TEST(l.iterations() == 10);
  l.reset();
  BOOST_TEST(l.history_length() == 0u);
  BOOST_TEST(l.iterations() == 0);
  // max_eval bounds the evaluations of one step (max_iter * 5 / 4 by default).
  opt::basic_lbfgs<double> m({.max_iter = 8, .line_search_fn = opt::line_search::strong_wolfe});
  BOOST_TEST(m.max_eval() == 10);
  std::vector<double> y(10, -4.0);
  const chain_quadratic f2{y, g, &calls};
  m.step(std::span<double>(y), std::span<const double>(g), f2);
  BOOST_TEST(m.evaluations() <= 10 + 25);  // the line search that crosses the limit still finishes
}

BOOST_AUTO_TEST_CASE(trains_a_network_through_a_closure) {
  using net_t = fnn::basic_sequential<double, fnn::input<3>, fnn::dense<8>, fnn::tanh, fnn::dense<2>>;
  net_t net{fnn::seed{4}};
  fnn::matrix<double> x(32, 3);
  std::vector<std::int32_t> labels(32);
  std::mt19937 gen(5);
  std::normal_distribution<double> nd;
  for (fnn::index_t i = 0; i < 32; ++i) {
    for (fnn::index_t j = 0; j < 3; ++j) x(i, j) = nd(gen);
    labels[std::size_t(i)] = x(i, 0) + 0.5 * x(i, 1) > 0 ? 1 : 0;
  }
  const fnn::loss::softmax_cross_entropy loss;
  auto closure = [&] { return net.compute_gradients(x.view(), labels, loss, fnn::mode::train); };
  opt::basic_lbfgs<double> l({.line_search_fn = opt::line_search::strong_wolfe});
  const double first = l.step(net, closure);
  for (int k = 0; k < 4; ++k) l.step(net, closure);
  const double last = closure();
  BOOST_TEST_MESSAGE("L-BFGS on a network: loss " << first << " -> " << last);
  BOOST_TEST(first > 0.3);
  BOOST_TEST(last < 0.1 * first);
}

BOOST_AUTO_TEST_CASE(bad_options_and_shapes) {
  BOOST_CHECK_THROW(opt::lbfgs({.max_iter = 0}), fnn::value_error);
  BOOST_CHECK_THROW(opt::lbfgs({.history_size = 0}), fnn::value_error);
  BOOST_CHECK_THROW(opt::lbfgs({.max_eval = -1}), fnn::value_error);
  BOOST_CHECK_THROW(opt::lbfgs({.tolerance_grad = -1.0f}), fnn::value_error);
  opt::lbfgs l;
  std::vector<float> p(4), g(3);
  BOOST_CHECK_THROW(l.step(std::span<float>(p), std::span<const float>(g), [] { return 0.0f; }), fnn::shape_error);
  // A history for 4 parameters does not silently apply to 5.
  std::vector<float> g4(4, 1.0f);
  l.step(std::span<float>(p), std::span<const float>(g4), [&] {
    for (std::size_t i = 0; i < 4; ++i) g4[i] = p[i] - 1.0f;
    return 0.0f;
  });
  std::vector<float> p5(5), g5(5, 1.0f);
  BOOST_CHECK_THROW(l.step(std::span<float>(p5), std::span<const float>(g5), [] { return 0.0f; }), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(plateau)

BOOST_AUTO_TEST_CASE(patience_cooldown_and_min_lr) {
  opt::reduce_lr_on_plateau p({.factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = 0.03});
  double lr = 0.1;
  // improving, then flat: the third bad epoch (> patience 2) halves the rate.
  const double metrics[] = {1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9};
  const double want[] = {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03, 0.03};
  for (int t = 0; t < 10; ++t) {
    lr = p.step(metrics[t], lr);
    BOOST_TEST_INFO("t " << t);
    BOOST_TEST(lr == want[t]);
  }
  BOOST_TEST(p.state().best == 0.9);
  BOOST_TEST(p.state().last_epoch == 10);
}

BOOST_AUTO_TEST_CASE(threshold_modes_and_max) {
  // rel: 0.99995 is not better than 1 * (1 - 1e-4); abs with threshold 0.1: 0.95 is not better than 1 - 0.1.
  opt::reduce_lr_on_plateau rel({.patience = 0});
  BOOST_TEST(rel.step(1.0, 1.0) == 1.0);
  BOOST_TEST(rel.step(0.99995, 1.0) == 0.1);
  opt::reduce_lr_on_plateau ab({.patience = 0, .threshold = 0.1, .threshold_mode = opt::plateau_threshold::abs});
  BOOST_TEST(ab.step(1.0, 1.0) == 1.0);
  BOOST_TEST(ab.step(0.95, 1.0) == 0.1);
  BOOST_TEST(ab.step(0.85, 0.1) == 0.1);  // better than 1 - 0.1
  opt::reduce_lr_on_plateau mx({.mode = opt::plateau_mode::max, .patience = 0});
  BOOST_TEST(mx.step(0.5, 1.0) == 1.0);
  BOOST_TEST(mx.step(0.6, 1.0) == 1.0);
  BOOST_TEST(mx.step(0.55, 1.0) == 0.1);
  // NaN is never an improvement.
  opt::reduce_lr_on_plateau n({.patience = 0});
  BOOST_TEST(n.step(1.0, 1.0) == 1.0);
  BOOST_TEST(n.step(std::numeric_limits<double>::quiet_NaN(), 1.0) == 0.1);
  // eps: a reduction smaller than eps is not applied.
  opt::reduce_lr_on_plateau e({.patience = 0, .eps = 0.5});
  e.step(1.0, 1.0);
  BOOST_TEST(e.step(2.0, 0.4) == 0.4);
}

BOOST_AUTO_TEST_CASE(drives_an_optimizer_and_resumes) {
  opt::adadelta a;
  opt::reduce_lr_on_plateau p({.patience = 1});
  BOOST_TEST(!p.step(1.0, a));
  BOOST_TEST(!p.step(1.0, a));
  BOOST_TEST(p.step(1.0, a));
  BOOST_TEST(a.lr() == 0.1f);
  opt::lbfgs l;
  opt::reduce_lr_on_plateau q({.patience = 0});
  q.step(1.0, l);
  BOOST_TEST(q.step(2.0, l));
  BOOST_TEST(l.lr() == 0.1f);
  // A copy of the state continues exactly as the original.
  opt::reduce_lr_on_plateau r({.patience = 1});
  r.set_state(p.state());
  for (double m : {1.0, 0.5, 0.5, 0.5}) BOOST_TEST(r.step(m, 1.0) == p.step(m, 1.0));
  BOOST_CHECK_THROW(r.set_state({.num_bad_epochs = -1}), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(bad_options) {
  BOOST_CHECK_THROW(opt::reduce_lr_on_plateau({.factor = 1.0}), fnn::value_error);
  BOOST_CHECK_THROW(opt::reduce_lr_on_plateau({.patience = -1}), fnn::value_error);
  BOOST_CHECK_THROW(opt::reduce_lr_on_plateau({.threshold = -1}), fnn::value_error);
  BOOST_CHECK_THROW(opt::reduce_lr_on_plateau({.cooldown = -1}), fnn::value_error);
  BOOST_CHECK_THROW(opt::reduce_lr_on_plateau({.min_lr = -1}), fnn::value_error);
  try {
    opt::reduce_lr_on_plateau({.factor = 2.0});
    BOOST_ERROR("no exception");
  } catch (const fnn::value_error& e) {
    BOOST_TEST(std::string(e.what()).find("factor") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(new_optimizer_checkpoints)

// AdaDelta's square_avg / acc_delta and its step count go through save_training_state and come back bit for
// bit: one more step on the original and on the restored copy gives the same parameters.
BOOST_AUTO_TEST_CASE(adadelta_training_state_round_trip) {
  using net_t = fnn::sequential<fnn::input<5>, fnn::dense<7>, fnn::group_norm<7>, fnn::relu, fnn::dense<3>>;
  net_t net{fnn::seed{2}};
  fnn::matrix<float> x(16, 5);
  std::mt19937 gen(8);
  std::normal_distribution<float> nd;
  for (float& v : x.flat()) v = nd(gen);
  std::vector<std::int32_t> labels(16);
  for (std::size_t i = 0; i < 16; ++i) labels[i] = std::int32_t(i % 3);
  const fnn::loss::softmax_cross_entropy loss;
  opt::adadelta a({.rho = 0.8f, .weight_decay = 1e-3f});
  for (int s = 0; s < 4; ++s) net.train_step(x.view(), labels, loss, a);

  const auto path =
      std::filesystem::temp_directory_path() / ("fnn_adadelta_state_" + std::to_string(::getpid()) + ".safetensors");
  fnn::io::save_training_state(path, net, a, {{"optimizer", "adadelta"}});
  const auto file = fnn::io::read_safetensors(path);
  BOOST_TEST(file.at("optimizer.0.weight.square_avg").shape.size() == 1u);
  BOOST_TEST(file.at("optimizer.3.bias.acc_delta").shape[0] == 3);
  BOOST_TEST(file.at("model.1.weight").shape[0] == 7);  // group_norm's affine, torch's names

  net_t loaded{fnn::seed{77}};
  opt::adadelta b({.rho = 0.8f, .weight_decay = 1e-3f});
  fnn::io::load_training_state(path, loaded, b);
  std::filesystem::remove(path);
  BOOST_TEST(b.step_count() == 4);
  net.train_step(x.view(), labels, loss, a);
  loaded.train_step(x.view(), labels, loss, b);
  std::vector<float> pa, pb;
  net.for_each_parameter([&](auto& p) { pa.insert(pa.end(), p.value.begin(), p.value.end()); });
  loaded.for_each_parameter([&](auto& p) { pb.insert(pb.end(), p.value.begin(), p.value.end()); });
  BOOST_TEST(pa == pb, tt::per_element());
  // The state itself mattered: a fresh AdaDelta from the same weights takes a different step.
  net_t fresh{fnn::seed{77}};
  opt::adadelta c({.rho = 0.8f, .weight_decay = 1e-3f});
  fnn::io::save_model(path, loaded, {});
  fnn::io::load_model(path, fresh);
  std::filesystem::remove(path);
  net.train_step(x.view(), labels, loss, a);
  fresh.train_step(x.view(), labels, loss, c);
  std::vector<float> pc, pn;
  net.for_each_parameter([&](auto& p) { pn.insert(pn.end(), p.value.begin(), p.value.end()); });
  fresh.for_each_parameter([&](auto& p) { pc.insert(pc.end(), p.value.begin(), p.value.end()); });
  BOOST_TEST(pn != pc);
}

// L-BFGS's history (pairs, direction, step, scalars) through a training state: the restored optimizer takes
// the same next step bit for bit.
BOOST_AUTO_TEST_CASE(lbfgs_training_state_round_trip) {
  using net_t = fnn::sequential<fnn::input<3>, fnn::dense<6>, fnn::group_norm<2>, fnn::tanh, fnn::dense<2>>;
  net_t net{fnn::seed{3}};
  fnn::matrix<float> x(24, 3);
  std::mt19937 gen(9);
  std::normal_distribution<float> nd;
  for (float& v : x.flat()) v = nd(gen);
  std::vector<std::int32_t> labels(24);
  for (std::size_t i = 0; i < 24; ++i) labels[i] = x(fnn::index_t(i), 0) > 0 ? 1 : 0;
  const fnn::loss::softmax_cross_entropy loss;
  const opt::lbfgs_options<float> o{.max_iter = 4, .history_size = 5, .line_search_fn = opt::line_search::strong_wolfe};
  opt::lbfgs a(o);
  auto closure_of = [&](net_t& n) {
    return [&] { return n.compute_gradients(x.view(), labels, loss, fnn::mode::train); };
  };
  for (int s = 0; s < 3; ++s) a.step(net, closure_of(net));
  BOOST_TEST_REQUIRE(a.history_length() > 1u);

  // The reference continues from copies that never went through a file (saving walks the state too).
  net_t ref_net = net;
  opt::lbfgs ref = a;
  const auto path =
      std::filesystem::temp_directory_path() / ("fnn_lbfgs_state_" + std::to_string(::getpid()) + ".safetensors");
  fnn::io::save_training_state(path, net, a, {});
  const auto file = fnn::io::read_safetensors(path);
  BOOST_TEST(file.at("optimizer.0.weight.old_dirs").shape[0] == 5 * 18);
  BOOST_TEST(file.at("optimizer.0.weight.lbfgs_scalars").shape[0] == 5 + 5);
  net_t loaded{fnn::seed{50}};
  opt::lbfgs b(o);
  fnn::io::load_training_state(path, loaded, b);
  std::filesystem::remove(path);
  BOOST_TEST(b.iterations() == a.iterations());
  BOOST_TEST(b.evaluations() == a.evaluations());
  BOOST_TEST(b.history_length() == a.history_length());
  const double la = ref.step(ref_net, closure_of(ref_net)), lb = b.step(loaded, closure_of(loaded));
  BOOST_TEST(la == lb);
  std::vector<float> pa, pb;
  ref_net.for_each_parameter([&](auto& p) { pa.insert(pa.end(), p.value.begin(), p.value.end()); });
  loaded.for_each_parameter([&](auto& p) { pb.insert(pb.end(), p.value.begin(), p.value.end()); });
  BOOST_TEST(pa == pb, tt::per_element());
  // A file for another history_size is a clear error.
  fnn::io::save_training_state(path, net, a, {});
  opt::lbfgs other({.history_size = 7});
  net_t third{fnn::seed{51}};
  BOOST_CHECK_THROW(fnn::io::load_training_state(path, third, other), std::exception);
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
