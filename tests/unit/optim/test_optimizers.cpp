// Every optimizer against a plain double-precision loop of torch's formula (torch/optim/*.py, 1.13),
// on spans and on a fake network; clipping, decay policy, overrides, state walking, bad options.
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fnn/optim/optim.hpp"

namespace opt = fnn::optim;
using vec = std::vector<double>;

namespace {

// ---- plain-loop references ------------------------------------------------------------------------

// Options every reference needs; `wd` is L2 through the gradient except for AdamW.
struct common_ref {
  double lr = 0, wd = 0, l1 = 0, clip_value = 0, max_norm = 0;
  bool maximize = false;
};

// clip_grad_value_, clip_grad_norm_ (over all arrays), maximize, weight decay, L1: returns d per array.
std::vector<vec> effective_grads(const std::vector<vec>& ps, std::vector<vec> gs, const common_ref& c,
                                 const std::vector<double>& wd, const std::vector<double>& l1, bool l2) {
  if (c.clip_value > 0)
    for (auto& g : gs)
      for (auto& x : g) x = std::clamp(x, -c.clip_value, c.clip_value);
  if (c.max_norm > 0) {
    double total = 0;
    for (auto& g : gs)
      for (double x : g) total += x * x;
    const double coef = std::min(1.0, c.max_norm / (std::sqrt(total) + 1e-6));
    for (auto& g : gs)
      for (auto& x : g) x *= coef;
  }
  for (std::size_t k = 0; k < gs.size(); ++k)
    for (std::size_t i = 0; i < gs[k].size(); ++i) {
      double& d = gs[k][i];
      if (c.maximize) d = -d;
      if (l2) d += wd[k] * ps[k][i];
      const double p = ps[k][i];
      d += l1[k] * double((0 < p) - (p < 0));
    }
  return gs;
}

struct ref_optimizer {
  enum class kind { sgd, adagrad, rmsprop, adam, adamw } type;
  common_ref c;
  double momentum = 0, dampening = 0, lr_decay = 0, init_acc = 0, eps = 0, alpha = 0, b1 = 0, b2 = 0;
  bool nesterov = false, centered = false, amsgrad = false;
  std::vector<double> wd_of, l1_of, lr_scale_of;  // per array (policy and overrides applied by the test)
  std::vector<vec> s1, s2, s3;
  int t = 0;

  void step(std::vector<vec>& ps, const std::vector<vec>& gs) {
    if (s1.empty()) {
      for (auto& p : ps) {
        s1.emplace_back(p.size(), type == kind::adagrad ? init_acc : 0.0);
        s2.emplace_back(p.size(), 0.0);
        s3.emplace_back(p.size(), 0.0);
      }
    }
    ++t;
    auto ds = effective_grads(ps, gs, c, wd_of, l1_of, type != kind::adamw);
    for (std::size_t k = 0; k < ps.size(); ++k) {
      const double lr = c.lr * lr_scale_of[k];
      for (std::size_t i = 0; i < ps[k].size(); ++i) one(ps[k][i], ds[k][i], s1[k][i], s2[k][i], s3[k][i], lr, wd_of[k]);
    }
  }

  void one(double& p, double d, double& a, double& b, double& e, double lr, double wd) const {
    switch (type) {
      case kind::sgd:
        if (momentum != 0) {
          a = t == 1 ? d : momentum * a + (1 - dampening) * d;
          d = nesterov ? d + momentum * a : a;
        }
        p -= lr * d;
        break;
      case kind::adagrad: {
        const double clr = lr / (1 + (t - 1) * lr_decay);
        a += d * d;
        p -= clr * d / (std::sqrt(a) + eps);
        break;
      }
      case kind::rmsprop: {
        a = alpha * a + (1 - alpha) * d * d;
        double avg;
        if (centered) {
          e = alpha * e + (1 - alpha) * d;
          avg = std::sqrt(a - e * e) + eps;
        } else {
          avg = std::sqrt(a) + eps;
        }
        if (momentum > 0) {
          b = momentum * b + d / avg;
          p -= lr * b;
        } else {
          p -= lr * d / avg;
        }
        break;
      }
      case kind::adam:
      case kind::adamw: {
        if (type == kind::adamw) p *= 1 - lr * wd;
        a = b1 * a + (1 - b1) * d;
        b = b2 * b + (1 - b2) * d * d;
        const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
        double vhat = b;
        if (amsgrad) vhat = e = std::max(e, b);
        p -= lr / bc1 * a / (std::sqrt(vhat) / std::sqrt(bc2) + eps);
        break;
      }
    }
  }
};

template <class T>
std::vector<T> cast(const vec& v) {
  return std::vector<T>(v.begin(), v.end());
}

vec random_vec(std::size_t n, std::mt19937& gen, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  vec v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T>
void check_close(const std::vector<T>& got, const vec& want, const std::string& what) {
  BOOST_REQUIRE_EQUAL(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double err = std::abs(double(got[i]) - want[i]);
    BOOST_TEST(err <= tolerance<T>() * (1.0 + std::abs(want[i])), what << " element " << i << ": " << got[i] << " vs "
                                                                        << want[i]);
  }
}

// Runs `steps` span steps of Opt (element type T) and of the reference on the same random data.
template <class T, class Opt>
void run_span_case(Opt optimizer, ref_optimizer ref, const std::string& what, int steps = 12, std::size_t n = 37) {
  std::mt19937 gen(1234);
  std::vector<vec> ref_p{random_vec(n, gen)};
  std::vector<T> p = cast<T>(ref_p[0]);
  for (auto& x : ref_p[0]) x = double(T(x));  // same starting point after rounding
  ref.wd_of = {ref.c.wd};
  ref.l1_of = {ref.c.l1};
  ref.lr_scale_of = {1.0};
  for (int s = 0; s < steps; ++s) {
    vec g = random_vec(n, gen, 0.5 + s);
    for (auto& x : g) x = double(T(x));
    const std::vector<T> gt = cast<T>(g);
    optimizer.step(std::span<T>(p), std::span<const T>(gt));
    ref.step(ref_p, {g});
    check_close(p, ref_p[0], what + " step " + std::to_string(s + 1));
  }
}

struct case_options {
  double lr = 0.05, wd = 0, l1 = 0, clip_value = 0, max_norm = 0;
  bool maximize = false;
};

ref_optimizer make_ref(ref_optimizer::kind k, const case_options& o) {
  ref_optimizer r{};
  r.type = k;
  r.c = {o.lr, o.wd, o.l1, o.clip_value, o.max_norm, o.maximize};
  return r;
}

template <class T>
void all_span_cases() {
  using K = ref_optimizer::kind;
  const std::vector<case_options> variants{
      {}, {.wd = 0.1}, {.l1 = 0.01}, {.clip_value = 0.3}, {.max_norm = 1.0}, {.maximize = true},
      {.wd = 0.05, .l1 = 0.02, .clip_value = 1.0, .max_norm = 2.0, .maximize = true}};
  for (const auto& v : variants) {
    const std::string tag = " wd=" + std::to_string(v.wd) + " l1=" + std::to_string(v.l1) + " clipv=" +
                            std::to_string(v.clip_value) + " maxn=" + std::to_string(v.max_norm) +
                            (v.maximize ? " maximize" : "");
    const T lr = T(v.lr), wd = T(v.wd), l1 = T(v.l1), cv = T(v.clip_value), mn = T(v.max_norm);
    const bool mx = v.maximize;
    // SGD: plain, momentum, dampening, nesterov.
    for (auto [mu, damp, nest] : {std::tuple{0.0, 0.0, false}, {0.9, 0.0, false}, {0.9, 0.3, false}, {0.8, 0.0, true}}) {
      auto r = make_ref(K::sgd, v);
      r.momentum = mu, r.dampening = damp, r.nesterov = nest;
      run_span_case<T>(opt::basic_sgd<T>({.lr = lr, .momentum = T(mu), .dampening = T(damp), .weight_decay = wd,
                                          .nesterov = nest, .maximize = mx, .l1 = l1, .max_grad_norm = mn,
                                          .clip_value = cv}),
                       r, "sgd mu=" + std::to_string(mu) + " damp=" + std::to_string(damp) + tag);
    }
    for (auto [lr_decay, init] : {std::pair{0.0, 0.0}, {0.01, 0.1}}) {
      auto r = make_ref(K::adagrad, v);
      r.lr_decay = lr_decay, r.init_acc = init, r.eps = double(T(1e-10));
      run_span_case<T>(opt::basic_adagrad<T>({.lr = lr, .lr_decay = T(lr_decay), .weight_decay = wd,
                                              .initial_accumulator_value = T(init), .maximize = mx, .l1 = l1,
                                              .max_grad_norm = mn, .clip_value = cv}),
                       r, "adagrad" + tag);
    }
    for (auto [mu, centered] : {std::pair{0.0, false}, {0.0, true}, {0.7, false}, {0.7, true}}) {
      auto r = make_ref(K::rmsprop, v);
      r.alpha = double(T(0.99)), r.eps = double(T(1e-8)), r.momentum = mu, r.centered = centered;
      run_span_case<T>(opt::basic_rmsprop<T>({.lr = lr / 10, .weight_decay = wd, .momentum = T(mu),
                                              .centered = centered, .maximize = mx, .l1 = l1, .max_grad_norm = mn,
                                              .clip_value = cv}),
                       [&] { r.c.lr = double(lr / 10); return r; }(),
                       "rmsprop mu=" + std::to_string(mu) + (centered ? " centered" : "") + tag);
    }
    for (bool ams : {false, true}) {
      auto r = make_ref(K::adam, v);
      r.b1 = double(T(0.9)), r.b2 = double(T(0.999)), r.eps = double(T(1e-8)), r.amsgrad = ams;
      run_span_case<T>(opt::basic_adam<T, false>({.lr = lr, .weight_decay = wd, .amsgrad = ams, .maximize = mx,
                                                  .l1 = l1, .max_grad_norm = mn, .clip_value = cv}),
                       r, std::string("adam") + (ams ? " amsgrad" : "") + tag);
      r.type = K::adamw;
      run_span_case<T>(opt::basic_adamw<T>({.lr = lr, .weight_decay = wd, .amsgrad = ams, .maximize = mx, .l1 = l1,
                                            .max_grad_norm = mn, .clip_value = cv}),
                       r, std::string("adamw") + (ams ? " amsgrad" : "") + tag);
    }
  }
}

// A network as the optimizers see one: three arrays of different kinds.
template <class T>
struct fake_net {
  std::vector<T> w, b, s, gw, gb, gs;
  explicit fake_net(std::mt19937& gen) {
    auto fill = [&](std::vector<T>& v, std::size_t n, double scale) { v = cast<T>(random_vec(n, gen, scale)); };
    fill(w, 20, 1), fill(b, 4, 1), fill(s, 4, 1), fill(gw, 20, 3), fill(gb, 4, 3), fill(gs, 4, 3);
  }
  template <class F>
  void for_each_parameter(F&& f) {
    fnn::parameter_ref<T> r{0, "weight", fnn::parameter_kind::weight, w, gw, {4, 5}, 2};
    f(r);
    r = {0, "bias", fnn::parameter_kind::bias, b, gb, {4, 1}, 1};
    f(r);
    r = {1, "weight", fnn::parameter_kind::norm_scale, s, gs, {4, 1}, 1};
    f(r);
  }
  std::vector<vec> params() const { return {vec(w.begin(), w.end()), vec(b.begin(), b.end()), vec(s.begin(), s.end())}; }
  std::vector<vec> grads() const {
    return {vec(gw.begin(), gw.end()), vec(gb.begin(), gb.end()), vec(gs.begin(), gs.end())};
  }
  void new_grads(std::mt19937& gen) {
    for (auto* g : {&gw, &gb, &gs})
      for (auto& x : *g) x = T(random_vec(1, gen, 3)[0]);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(optimizers)

BOOST_AUTO_TEST_CASE(span_steps_match_reference_float) { all_span_cases<float>(); }
BOOST_AUTO_TEST_CASE(span_steps_match_reference_double) { all_span_cases<double>(); }

BOOST_AUTO_TEST_CASE(network_step_policy_overrides_and_global_clip) {
  std::mt19937 gen(7);
  fake_net<double> net(gen);
  opt::basic_adamw<double> o({.lr = 0.01, .weight_decay = 0.1, .max_grad_norm = 1.0,
                              .decay = opt::decay_policy::weights_only});
  o.set_override("1.weight", {.lr_scale = 0.5, .weight_decay = -1});
  ref_optimizer r{};
  r.type = ref_optimizer::kind::adamw;
  r.c = {0.01, 0.1, 0, 0, 1.0, false};
  r.b1 = 0.9, r.b2 = 0.999, r.eps = 1e-8;
  r.wd_of = {0.1, 0.0, 0.0};       // bias and norm scale are not decayed
  r.lr_scale_of = {1.0, 1.0, 0.5};
  r.l1_of = {0, 0, 0};
  auto ref_p = net.params();
  for (int s = 0; s < 5; ++s) {
    net.new_grads(gen);
    double total = 0;
    for (auto& g : net.grads())
      for (double x : g) total += x * x;
    const auto stats = o.step(net);
    BOOST_TEST(stats.grad_norm == std::sqrt(total), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(stats.clip_scale < 1.0);  // the gradients are large, clipping must have happened
    r.step(ref_p, net.grads());
    const auto got = net.params();
    for (std::size_t k = 0; k < 3; ++k) check_close(std::vector<double>(got[k]), ref_p[k], "array " + std::to_string(k));
  }
  // The decay really is off for the bias: the same run with decay on everything differs there.
  fake_net<double> net2(gen), net3 = net2;
  opt::basic_adamw<double> all({.lr = 0.01, .weight_decay = 0.5});
  opt::basic_adamw<double> weights({.lr = 0.01, .weight_decay = 0.5, .decay = opt::decay_policy::weights_only});
  all.step(net2);
  weights.step(net3);
  BOOST_TEST(net2.w == net3.w);
  BOOST_TEST(net2.b != net3.b);
  BOOST_TEST(net2.s != net3.s);
}

BOOST_AUTO_TEST_CASE(gradients_are_not_written_by_fused_clipping) {
  std::mt19937 gen(8);
  fake_net<float> net(gen);
  const auto g0 = net.gw;
  opt::sgd o({.lr = 0.1f, .max_grad_norm = 0.5f, .clip_value = 0.1f});
  o.step(net);
  BOOST_TEST(net.gw == g0);
}

BOOST_AUTO_TEST_CASE(standalone_clipping_writes_gradients) {
  std::mt19937 gen(9);
  fake_net<double> net(gen);
  double total = 0;
  for (auto& g : net.grads())
    for (double x : g) total += x * x;
  const auto before = net.grads();
  const double n = opt::clip_grad_norm(net, 1.0);
  BOOST_TEST(n == std::sqrt(total), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(opt::global_grad_norm(net) == 1.0 / (1.0 + 1e-6 / n), boost::test_tools::tolerance(1e-9));
  const auto after = net.grads();
  BOOST_TEST(after[1][2] == before[1][2] / (n + 1e-6), boost::test_tools::tolerance(1e-12));
  // Below the threshold nothing changes.
  BOOST_TEST(opt::clip_grad_norm(net, 10.0) < 10.0);
  BOOST_TEST(net.grads() == after);
  opt::clip_grad_value(net, 0.1);
  for (auto& g : net.grads())
    for (double x : g) BOOST_TEST(std::abs(x) <= 0.1);
  BOOST_CHECK_THROW(opt::clip_grad_norm(net, -1.0), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(state_walk_save_and_load_resumes_exactly) {
  std::mt19937 gen(10);
  fake_net<float> a(gen);
  fake_net<float> b = a;
  opt::adamw oa({.lr = 0.01f, .amsgrad = true});
  for (int s = 0; s < 3; ++s) oa.step(a);
  std::vector<std::string> names;
  std::vector<std::vector<float>> saved;
  oa.for_each_state([&](fnn::index_t i, std::string_view name, std::span<float> v) {
    names.push_back(std::to_string(i) + "." + std::string(name));
    saved.emplace_back(v.begin(), v.end());
  });
  const std::vector<std::string> expected{"0.exp_avg", "0.exp_avg_sq", "0.max_exp_avg_sq", "1.exp_avg",
                                          "1.exp_avg_sq", "1.max_exp_avg_sq", "2.exp_avg", "2.exp_avg_sq",
                                          "2.max_exp_avg_sq"};
  BOOST_TEST(names == expected, boost::test_tools::per_element());
  BOOST_TEST(oa.step_count() == 3);

  opt::adamw ob({.lr = 0.01f, .amsgrad = true});
  b.w = a.w, b.b = a.b, b.s = a.s;
  ob.prepare(b);
  std::size_t k = 0;
  for (fnn::index_t i = 0; i < 3; ++i)
    for (auto n : {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}) ob.load_state(i, n, saved[k++]);
  ob.set_step_count(3);
  a.new_grads(gen);
  b.gw = a.gw, b.gb = a.gb, b.gs = a.gs;
  oa.step(a);
  ob.step(b);
  BOOST_TEST(a.w == b.w);
  BOOST_TEST(a.s == b.s);
  BOOST_CHECK_THROW(ob.load_state(0, "exp_avg", std::vector<float>(3)), fnn::shape_error);
  BOOST_CHECK_THROW(ob.load_state(0, "momentum_buffer", saved[0]), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(state_names_follow_options) {
  auto names = [](auto o) {
    o.prepare(std::vector<std::size_t>{5});
    std::vector<std::string> n;
    o.for_each_state([&](fnn::index_t, std::string_view s, std::span<float> v) {
      BOOST_TEST(v.size() == 5u);
      n.emplace_back(s);
    });
    return n;
  };
  BOOST_TEST(names(opt::sgd{}).empty());
  BOOST_TEST(names(opt::sgd({.momentum = 0.9f})) == std::vector<std::string>{"momentum_buffer"});
  BOOST_TEST(names(opt::adagrad{}) == std::vector<std::string>{"sum"});
  BOOST_TEST(names(opt::rmsprop({.momentum = 0.5f, .centered = true})) ==
             (std::vector<std::string>{"square_avg", "momentum_buffer", "grad_avg"}));
  BOOST_TEST(names(opt::adam{}) == (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
}

BOOST_AUTO_TEST_CASE(mismatched_sizes_throw_shape_error) {
  opt::adam o;
  std::vector<float> p(8), g(8), g7(7), p9(9), g9(9);
  BOOST_CHECK_THROW(o.step(std::span<float>(p), std::span<const float>(g7)), fnn::shape_error);
  o.step(std::span<float>(p), std::span<const float>(g));
  BOOST_CHECK_EXCEPTION(o.step(std::span<float>(p9), std::span<const float>(g9)), fnn::shape_error,
                        [](const fnn::shape_error& e) {
                          const std::string w = e.what();
                          return w.find('9') != std::string::npos && w.find('8') != std::string::npos;
                        });
  std::mt19937 gen(1);
  fake_net<float> net(gen);
  BOOST_CHECK_THROW(o.step(net), fnn::shape_error);  // 3 arrays, the state holds 1
}

BOOST_AUTO_TEST_CASE(bad_options_throw_value_error_naming_the_value) {
  BOOST_CHECK_EXCEPTION(opt::sgd({.lr = -0.1f}), fnn::value_error, [](const fnn::value_error& e) {
    return std::string(e.what()).find("lr") != std::string::npos &&
           std::string(e.what()).find("-0.1") != std::string::npos;
  });
  BOOST_CHECK_THROW(opt::sgd({.momentum = -1.0f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::sgd({.momentum = 0.0f, .nesterov = true}), fnn::value_error);
  BOOST_CHECK_THROW(opt::sgd({.momentum = 0.9f, .dampening = 0.1f, .nesterov = true}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adam({.betas = {1.0f, 0.999f}}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adam({.betas = {0.9f, -0.1f}}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adamw({.eps = -1e-8f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adamw({.weight_decay = -1e-2f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adagrad({.lr_decay = -1.0f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::adagrad({.initial_accumulator_value = -1.0f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::rmsprop({.alpha = -0.5f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::rmsprop({.max_grad_norm = -1.0f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::rmsprop({.clip_value = -1.0f}), fnn::value_error);
  BOOST_CHECK_THROW(opt::sgd({.l1 = -1.0f}), fnn::value_error);
  opt::sgd o;
  BOOST_CHECK_THROW(o.set_lr(-1.0f), fnn::value_error);
  BOOST_CHECK_THROW(o.set_step_count(-1), fnn::value_error);
  BOOST_CHECK_THROW(o.set_override("0.weight", {.lr_scale = -1.0f}), fnn::value_error);
  BOOST_CHECK_NO_THROW(opt::sgd({.lr = 0.0f}));
}

BOOST_AUTO_TEST_CASE(set_lr_changes_the_step) {
  std::vector<float> p{1.0f}, g{1.0f};
  opt::sgd o({.lr = 0.1f});
  o.step(std::span<float>(p), std::span<const float>(g));
  BOOST_TEST(p[0] == 0.9f);
  o.set_lr(0.5f);
  BOOST_TEST(o.lr() == 0.5f);
  o.step(std::span<float>(p), std::span<const float>(g));
  BOOST_TEST(p[0] == 0.4f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(multi_array_span_step_keeps_state_per_array) {
  std::vector<float> p1{1, 2, 3}, p2{4, 5}, g1{1, 1, 1}, g2{2, 2};
  std::vector<std::span<float>> ps{p1, p2};
  std::vector<std::span<const float>> gs{g1, g2};
  opt::sgd o({.lr = 0.1f, .momentum = 0.5f});
  o.step(ps, gs);
  o.step(ps, gs);
  // buf: 1, then 0.5 + 1 = 1.5 -> p1[0] = 1 - 0.1 - 0.15 = 0.75; p2[0] = 4 - 0.2 - 0.3 = 3.5
  BOOST_TEST(p1[0] == 0.75f, boost::test_tools::tolerance(1e-6f));
  BOOST_TEST(p2[0] == 3.5f, boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_SUITE_END()
