// fnn's optimizers and schedules against trajectories produced by torch.optim (gen_optim.py):
// parameters after every one of 50 steps, lr schedules over 1000 steps, ReduceLROnPlateau over a metric
// sequence, and L-BFGS (with and without its strong-Wolfe line search) over several step(closure) calls.
#define BOOST_TEST_MODULE fnn_parity
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <sys/wait.h>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "fnn/optim/optim.hpp"

namespace opt = fnn::optim;

namespace {

constexpr double rel_tol = 1e-5;

struct optim_case {
  std::string name, kind;
  std::map<std::string, float> o;
  std::vector<float> p0;
  std::vector<std::vector<float>> grads, params;
};
struct sched_case {
  std::string name;
  std::vector<double> lr;
};
struct plateau_case {
  std::string name;
  std::map<std::string, double> o;
  std::vector<double> metrics, lr;
};
struct lbfgs_call {
  double loss = 0;
  std::int64_t evals = 0, iters = 0;
  std::vector<double> x;
};
struct lbfgs_case {
  std::string name, problem;
  std::map<std::string, double> o;
  std::vector<double> a, b, x0;
  std::vector<lbfgs_call> calls;
};
struct parity_data {
  std::vector<optim_case> optims;
  std::vector<sched_case> scheds;
  std::vector<plateau_case> plateaus;
  std::vector<lbfgs_case> lbfgs;
};

template <class T>
std::vector<T> read_values(std::istream& in, const char* tag, std::size_t n) {
  std::string t;
  in >> t;
  if (t != tag) throw std::runtime_error("parity data: expected '" + std::string(tag) + "', got '" + t + "'");
  std::vector<T> v(n);
  for (auto& x : v) {
    std::string word;  // repr() of NaN is "nan", which operator>> does not parse
    in >> word;
    x = static_cast<T>(std::strtod(word.c_str(), nullptr));
  }
  return v;
}

std::map<std::string, double> read_options(std::istream& in, std::size_t n) {
  std::map<std::string, double> o;
  for (std::size_t i = 0; i < n; ++i) {
    std::string k, v;
    in >> k >> v;
    o[k] = std::strtod(v.c_str(), nullptr);
  }
  return o;
}

std::vector<float> read_floats(std::istream& in, const char* tag, std::size_t n) {
  std::string t;
  in >> t;
  if (t != tag) throw std::runtime_error("parity data: expected '" + std::string(tag) + "', got '" + t + "'");
  std::vector<float> v(n);
  for (auto& x : v) in >> x;
  return v;
}

parity_data& data() {
  static parity_data d = [] {
    parity_data r;
    std::ifstream in(FNN_PARITY_DATA);
    if (!in) throw std::runtime_error("cannot open " FNN_PARITY_DATA);
    std::string tag;
    while (in >> tag) {
      if (tag == "optim") {
        optim_case c;
        std::size_t n = 0, steps = 0, nopts = 0;
        in >> c.name >> c.kind >> n >> steps >> nopts;
        for (std::size_t i = 0; i < nopts; ++i) {
          std::string k;
          float v;
          in >> k >> v;
          c.o[k] = v;
        }
        c.p0 = read_floats(in, "p", n);
        for (std::size_t s = 0; s < steps; ++s) {
          c.grads.push_back(read_floats(in, "g", n));
          c.params.push_back(read_floats(in, "p", n));
        }
        r.optims.push_back(std::move(c));
      } else if (tag == "sched") {
        sched_case c;
        std::size_t n = 0;
        in >> c.name >> n;
        c.lr.resize(n);
        for (auto& x : c.lr) in >> x;
        r.scheds.push_back(std::move(c));
      } else if (tag == "plateau") {
        plateau_case c;
        std::size_t n = 0, nopts = 0;
        in >> c.name >> n >> nopts;
        c.o = read_options(in, nopts);
        std::string t;
        c.metrics.resize(n);
        for (auto& x : c.metrics) {
          in >> t;
          x = std::strtod(t.c_str(), nullptr);
        }
        c.lr.resize(n);
        for (auto& x : c.lr) in >> x;
        r.plateaus.push_back(std::move(c));
      } else if (tag == "lbfgs") {
        lbfgs_case c;
        std::size_t n = 0, calls = 0, nopts = 0;
        in >> c.name >> c.problem >> n >> calls >> nopts;
        c.o = read_options(in, nopts);
        if (c.problem == "quad") {
          c.a = read_values<double>(in, "A", n * n);
          c.b = read_values<double>(in, "b", n);
        }
        c.x0 = read_values<double>(in, "x", n);
        for (std::size_t k = 0; k < calls; ++k) {
          lbfgs_call call;
          std::string t;
          in >> t >> call.loss >> call.evals >> call.iters;
          if (t != "r") throw std::runtime_error("parity data: expected 'r', got '" + t + "'");
          call.x = read_values<double>(in, "x", n);
          c.calls.push_back(std::move(call));
        }
        r.lbfgs.push_back(std::move(c));
      } else {
        throw std::runtime_error("parity data: unknown record " + tag);
      }
    }
    return r;
  }();
  return d;
}

float get(const optim_case& c, const char* key, float fallback) {
  const auto it = c.o.find(key);
  return it == c.o.end() ? fallback : it->second;
}

// Replays the gradients through Opt and compares after every step; returns the largest relative error.
template <class Opt>
double replay(const optim_case& c, Opt o) {
  std::vector<float> p = c.p0;
  double worst = 0;
  for (std::size_t s = 0; s < c.grads.size(); ++s) {
    o.step(std::span<float>(p), std::span<const float>(c.grads[s]));
    for (std::size_t i = 0; i < p.size(); ++i) {
      const double want = c.params[s][i];
      // Relative error; magnitudes below 0.1 are compared against 0.1: the parameters (~N(0, 1)) cross zero,
      // and near zero a few float ulps of their O(1) neighbours (order of rounding, fma) dominate.
      const double err = std::abs(double(p[i]) - want) / std::max(std::abs(want), 0.1);
      worst = std::max(worst, err);
      if (err > rel_tol)
        BOOST_ERROR(c.name << " step " << s + 1 << " element " << i << ": fnn " << p[i] << " torch " << want
                           << " rel " << err);
    }
  }
  return worst;
}

double run_optim(const optim_case& c) {
  const float lr = get(c, "lr", 0), wd = get(c, "weight_decay", 0), mn = get(c, "max_grad_norm", 0),
              cv = get(c, "clip_value", 0);
  if (c.kind == "sgd")
    return replay(c, opt::sgd({.lr = lr, .momentum = get(c, "momentum", 0), .dampening = get(c, "dampening", 0),
                               .weight_decay = wd, .nesterov = get(c, "nesterov", 0) != 0, .max_grad_norm = mn,
                               .clip_value = cv}));
  if (c.kind == "adagrad")
    return replay(c, opt::adagrad({.lr = lr, .lr_decay = get(c, "lr_decay", 0), .weight_decay = wd,
                                   .initial_accumulator_value = get(c, "initial_accumulator_value", 0),
                                   .max_grad_norm = mn, .clip_value = cv}));
  if (c.kind == "rmsprop")
    return replay(c, opt::rmsprop({.lr = lr, .alpha = get(c, "alpha", 0.99f), .weight_decay = wd,
                                   .momentum = get(c, "momentum", 0), .centered = get(c, "centered", 0) != 0,
                                   .max_grad_norm = mn, .clip_value = cv}));
  if (c.kind == "adadelta")
    return replay(c, opt::adadelta({.lr = lr, .rho = get(c, "rho", 0.9f), .eps = get(c, "eps", 1e-6f),
                                    .weight_decay = wd, .max_grad_norm = mn, .clip_value = cv}));
  const std::array<float, 2> betas{get(c, "betas0", 0.9f), get(c, "betas1", 0.999f)};
  const bool ams = get(c, "amsgrad", 0) != 0;
  const float eps = get(c, "eps", 1e-8f);
  if (c.kind == "adam")
    return replay(c, opt::adam({.lr = lr, .betas = betas, .eps = eps, .weight_decay = wd, .amsgrad = ams,
                                .max_grad_norm = mn, .clip_value = cv}));
  if (c.kind == "adamw")
    return replay(c, opt::adamw({.lr = lr, .betas = betas, .eps = eps, .weight_decay = get(c, "weight_decay", 1e-2f),
                                 .amsgrad = ams, .max_grad_norm = mn, .clip_value = cv}));
  BOOST_ERROR("unknown optimizer kind " << c.kind);
  return 1;
}

template <class S>
double compare_schedule(const sched_case& c, const S& s) {
  double worst = 0;
  for (std::size_t t = 0; t < c.lr.size(); ++t) {
    const double got = s.lr_at(static_cast<std::int64_t>(t));
    const double err = std::abs(got - c.lr[t]) / std::max(std::abs(c.lr[t]), 1e-12);
    worst = std::max(worst, err);
    if (err > rel_tol) BOOST_ERROR(c.name << " t=" << t << ": fnn " << got << " torch " << c.lr[t]);
  }
  return worst;
}

double run_schedule(const sched_case& c) {
  const double lr0 = 0.1;
  if (c.name == "step") return compare_schedule(c, opt::step_lr(lr0, 30, 0.5));
  if (c.name == "multistep") return compare_schedule(c, opt::multi_step_lr(lr0, {100, 300, 700}, 0.1));
  if (c.name == "exponential") return compare_schedule(c, opt::exponential_lr(lr0, 0.995));
  if (c.name == "inverse_time") return compare_schedule(c, opt::inverse_time_lr(lr0, 0.01));
  if (c.name == "cosine") return compare_schedule(c, opt::cosine_annealing_lr(lr0, 300, 1e-4));
  if (c.name == "restarts") return compare_schedule(c, opt::cosine_warm_restarts_lr(lr0, 50, 2, 1e-5));
  if (c.name == "restarts_mult1") return compare_schedule(c, opt::cosine_warm_restarts_lr(lr0, 70));
  if (c.name == "warmup_cosine")
    return compare_schedule(c, opt::linear_warmup(100, 0.1, opt::cosine_annealing_lr(lr0, 900)));
  if (c.name == "warmup_step") return compare_schedule(c, opt::linear_warmup(40, 0.25, opt::step_lr(lr0, 100, 0.5)));
  BOOST_ERROR("unknown schedule " << c.name);
  return 1;
}

double opt_or(const std::map<std::string, double>& o, const char* key, double fallback) {
  const auto it = o.find(key);
  return it == o.end() ? fallback : it->second;
}

// The lr after each observation must be torch's exactly (the same double arithmetic).
void run_plateau(const plateau_case& c) {
  const auto& o = c.o;
  opt::reduce_lr_on_plateau s{{.mode = opt_or(o, "mode", 0) == 1 ? opt::plateau_mode::max : opt::plateau_mode::min,
                               .factor = opt_or(o, "factor", 0.1),
                               .patience = std::int64_t(opt_or(o, "patience", 10)),
                               .threshold = opt_or(o, "threshold", 1e-4),
                               .threshold_mode = opt_or(o, "threshold_mode", 0) == 1 ? opt::plateau_threshold::abs
                                                                                      : opt::plateau_threshold::rel,
                               .cooldown = std::int64_t(opt_or(o, "cooldown", 0)),
                               .min_lr = opt_or(o, "min_lr", 0),
                               .eps = opt_or(o, "eps", 1e-8)}};
  double lr = 0.1;
  std::size_t reductions = 0;
  for (std::size_t t = 0; t < c.metrics.size(); ++t) {
    const double next = s.step(c.metrics[t], lr);
    reductions += next != lr;
    lr = next;
    if (lr != c.lr[t]) BOOST_ERROR(c.name << " step " << t + 1 << ": fnn lr " << lr << " torch " << c.lr[t]);
  }
  BOOST_TEST_MESSAGE("plateau " << c.name << ": " << c.metrics.size() << " steps, " << reductions << " reductions");
}

// f and its gradient for the two L-BFGS problems, in the order of operations torch's autograd uses.
struct lbfgs_problem {
  const lbfgs_case& c;
  std::vector<double>& x;
  std::vector<double>& g;
  double operator()() const {
    const std::size_t n = x.size();
    double f = 0;
    if (c.problem == "quad") {
      for (std::size_t i = 0; i < n; ++i) {
        double ax = 0;
        for (std::size_t j = 0; j < n; ++j) ax += c.a[i * n + j] * x[j];
        f += 0.5 * x[i] * ax - c.b[i] * x[i];
        g[i] = 0;
      }
      // grad = (A + A')x / 2 - b; A is symmetric.
      for (std::size_t i = 0; i < n; ++i) {
        double ax = 0;
        for (std::size_t j = 0; j < n; ++j) ax += 0.5 * (c.a[i * n + j] + c.a[j * n + i]) * x[j];
        g[i] = ax - c.b[i];
      }
      return f;
    }
    std::fill(g.begin(), g.end(), 0.0);
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const double u = x[i + 1] - x[i] * x[i], v = 1 - x[i];
      f += 100 * u * u + v * v;
      g[i + 1] += 200 * u;
      g[i] += -400 * u * x[i] - 2 * v;
    }
    return f;
  }
};

void run_lbfgs(const lbfgs_case& c) {
  const auto& o = c.o;
  opt::basic_lbfgs<double> l{{.lr = opt_or(o, "lr", 1),
                              .max_iter = std::int64_t(opt_or(o, "max_iter", 20)),
                              .max_eval = std::int64_t(opt_or(o, "max_eval", 0)),
                              .tolerance_grad = opt_or(o, "tolerance_grad", 1e-7),
                              .tolerance_change = opt_or(o, "tolerance_change", 1e-9),
                              .history_size = std::int64_t(opt_or(o, "history_size", 100)),
                              .line_search_fn = opt_or(o, "line_search", 0) == 1 ? opt::line_search::strong_wolfe
                                                                                  : opt::line_search::none}};
  std::vector<double> x = c.x0, g(x.size());
  const lbfgs_problem f{c, x, g};
  // Along the Rosenbrock valley the last-bit differences of the summation order (torch's vectorized dot
  // products and autograd against plain loops) grow ~100x per call; the branch decisions of the line search
  // (evaluation and iteration counts) are compared exactly for every call, the values to 1e-5 there and to
  // 1e-9 on the quadratic.
  const double tol = c.problem == "rosenbrock" ? 1e-5 : 1e-9;
  double worst = 0;
  for (std::size_t k = 0; k < c.calls.size(); ++k) {
    const auto& want = c.calls[k];
    const double loss = l.step(std::span<double>(x), std::span<const double>(g), f);
    BOOST_TEST_INFO(c.name << " call " << k + 1);
    BOOST_TEST(l.evaluations() == want.evals);
    BOOST_TEST_INFO(c.name << " call " << k + 1);
    BOOST_TEST(l.iterations() == want.iters);
    const double lerr = std::abs(loss - want.loss) / std::max(std::abs(want.loss), 1e-3);
    if (lerr > tol) BOOST_ERROR(c.name << " call " << k + 1 << ": loss fnn " << loss << " torch " << want.loss);
    double call_worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double err = std::abs(x[i] - want.x[i]) / std::max(std::abs(want.x[i]), 0.1);
      worst = std::max(worst, err);
      call_worst = std::max(call_worst, err);
      if (err > tol)
        BOOST_ERROR(c.name << " call " << k + 1 << " element " << i << ": fnn " << x[i] << " torch " << want.x[i]);
    }
    BOOST_TEST_MESSAGE("  " << c.name << " call " << k + 1 << ": max rel err " << call_worst << ", loss " << loss);
  }
  BOOST_TEST_MESSAGE("lbfgs " << c.name << ": " << c.calls.size() << " calls, " << l.evaluations()
                              << " evaluations, " << l.iterations() << " iterations, max rel err " << worst);
}

}  // namespace

BOOST_AUTO_TEST_CASE(reduce_lr_on_plateau_matches_torch) {
  BOOST_TEST_REQUIRE(data().plateaus.size() >= 5u);
  for (const auto& c : data().plateaus) run_plateau(c);
}

BOOST_AUTO_TEST_CASE(lbfgs_matches_torch_every_call) {
  BOOST_TEST_REQUIRE(data().lbfgs.size() >= 7u);
  for (const auto& c : data().lbfgs) run_lbfgs(c);
}

BOOST_AUTO_TEST_CASE(optimizers_match_torch_every_step) {
  BOOST_TEST_REQUIRE(data().optims.size() >= 18u);
  for (const auto& c : data().optims) {
    const double worst = run_optim(c);
    BOOST_TEST_MESSAGE("optim " << c.name << ": " << c.grads.size() << " steps, max rel err " << worst);
  }
}

BOOST_AUTO_TEST_CASE(schedules_match_torch) {
  BOOST_TEST_REQUIRE(data().scheds.size() >= 9u);
  for (const auto& c : data().scheds) {
    const double worst = run_schedule(c);
    BOOST_TEST_MESSAGE("schedule " << c.name << ": " << c.lr.size() << " steps, max rel err " << worst);
  }
}

int main(int argc, char* argv[]) {
  const std::string cmd = std::string(FNN_TEST_PYTHON) + " " + FNN_PARITY_SCRIPT + " " + FNN_PARITY_DATA;
  const int rc = std::system(cmd.c_str());
  const int code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
  if (code == 77) {
    std::cout << "fnn_parity_tests SKIPPED: torch is not importable by " << FNN_TEST_PYTHON << "\n";
    return 77;
  }
  if (code != 0) {
    std::cerr << "fnn_parity_tests: '" << cmd << "' failed with " << code << "\n";
    return 1;
  }
  return boost::unit_test::unit_test_main(&::init_unit_test, argc, argv);
}
