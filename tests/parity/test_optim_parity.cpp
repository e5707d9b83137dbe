// fnn's optimizers and schedules against trajectories produced by torch.optim (gen_optim.py):
// parameters after every one of 50 steps, lr schedules over 1000 steps.
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
struct parity_data {
  std::vector<optim_case> optims;
  std::vector<sched_case> scheds;
};

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

}  // namespace

BOOST_AUTO_TEST_CASE(optimizers_match_torch_every_step) {
  BOOST_TEST_REQUIRE(data().optims.size() >= 16u);
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
