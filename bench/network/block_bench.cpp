// One dense -> batch_norm -> GELU (exact) block in train mode: fnn::fused (the fusion plan's dense_bn_act
// stage) against fnn::unfused (each layer's reference code), at two shapes:
//   B=256, 1024 -> 1024   and   B=128, 784 -> 256 (the Fashion-MNIST MLP's first block).
// Passes timed:
//   fwd      net.forward(x, train)
//   fwd_bwd  net.zero_grad(); net.forward(x, train); net.backward(dy, /*want_input_gradient=*/true)
//            (zero_grad IS included: it is part of every training step, and the PyTorch twin sets
//            gradients to None in its loop.)
// The thread count is a benchmark argument (nt); fnn::set_num_threads(nt) before each run. Wall time
// (UseRealTime), milliseconds.
//
// What is timed is checked: before the timing loop the timed network's output, input gradient and
// dense weight gradient are compared with a network of the other policy built from the same seed on
// the same inputs (max |a - b| / max |b| <= 1e-3 over each array), and after the loop the timed
// network's last output (and gradients) must still match that reference. Mismatch -> SkipWithError.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/kernels/threads.hpp"

namespace {

#ifndef FNN_BENCH_BLOCK_TOLERANCE
#define FNN_BENCH_BLOCK_TOLERANCE 1e-3  // overridable only to see the check fail (tolerance 0)
#endif
constexpr double tolerance = FNN_BENCH_BLOCK_TOLERANCE;
constexpr std::uint64_t net_seed = 42;

template <class Policy, std::size_t In, std::size_t Out>
using block_t = fnn::network<Policy, float, fnn::input<In>, fnn::dense<Out>, fnn::batch_norm, fnn::gelu>;

fnn::matrix<float> random_matrix(fnn::index_t rows, fnn::index_t cols, std::uint64_t seed) {
  fnn::matrix<float> m(rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& v : m.flat()) v = dist(rng);
  return m;
}

// max |a - b| / max |b|; the normwise relative error (elementwise relative error is meaningless at
// GELU outputs near zero).
double relative_error(std::span<const float> a, std::span<const float> b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    diff = std::max(diff, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

std::span<const float> flat(fnn::const_matrix_view<float> v) { return {v.data(), std::size_t(v.size())}; }

struct snapshot {
  std::vector<float> y, dx, dw;
};

template <class Net>
snapshot take(Net& net, bool with_gradients) {
  snapshot s;
  auto y = flat(net.output());
  s.y.assign(y.begin(), y.end());
  if (with_gradients) {
    auto dx = flat(net.input_gradient());
    s.dx.assign(dx.begin(), dx.end());
    auto dw = net.template layer<0>().weight_grad();
    s.dw.assign(dw.begin(), dw.end());
  }
  return s;
}

template <class Net>
void step(Net& net, const fnn::matrix<float>& x, const fnn::matrix<float>& dy, bool backward) {
  if (backward) {
    net.zero_grad();
    net.forward(x.view(), fnn::mode::train);
    net.backward(dy.view(), true);
  } else {
    net.forward(x.view(), fnn::mode::train);
  }
}

// An empty string when `got` matches `want`, else what differs; the largest error goes to `worst`.
std::string compare(const snapshot& got, const snapshot& want, bool with_gradients, const char* when, double& worst) {
  std::string err;
  worst = 0;
  auto check = [&](const char* what, const std::vector<float>& a, const std::vector<float>& b) {
    const double e = relative_error(a, b);
    worst = std::max(worst, e);
    if (!(e <= tolerance)) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s: %s differs from the other policy, rel err %.3g > %.1e; ", when, what, e,
                    tolerance);
      err += buf;
    }
  };
  check("output", got.y, want.y);
  if (with_gradients) {
    check("input gradient", got.dx, want.dx);
    check("weight gradient", got.dw, want.dw);
  }
  return err;
}

template <class Policy, class Other, std::size_t In, std::size_t Out>
void block(benchmark::State& state, bool backward) {
  const auto batch = fnn::index_t(state.range(0));
  fnn::set_num_threads(int(state.range(1)));
  const auto x = random_matrix(batch, fnn::index_t(In), 1);
  const auto dy = random_matrix(batch, fnn::index_t(Out), 2);

  block_t<Policy, In, Out> net{fnn::seed{net_seed}};
  block_t<Other, In, Out> ref{fnn::seed{net_seed}};
  step(ref, x, dy, true);  // the reference always computes gradients: they are compared for fwd_bwd
  const snapshot want = take(ref, backward);
  step(net, x, dy, backward);
  double worst_before = 0, worst_after = 0;
  if (auto err = compare(take(net, backward), want, backward, "before timing", worst_before); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }

  for (auto _ : state) {
    step(net, x, dy, backward);
    benchmark::DoNotOptimize(net.output().data());
    if (backward) benchmark::DoNotOptimize(net.input_gradient().data());
    benchmark::ClobberMemory();
  }

  // Parameters do not change (no optimizer step) and zero_grad runs every iteration, so the last
  // iteration must reproduce the reference exactly as the first did.
  if (auto err = compare(take(net, backward), want, backward, "after timing", worst_after); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  const double flops = 2.0 * double(batch) * In * Out * (backward ? 3 : 1);
  state.counters["max_rel_err"] = std::max(worst_before, worst_after);
  state.counters["GFLOPs"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <std::size_t In, std::size_t Out>
void register_shape(fnn::index_t batch) {
  const std::string shape = std::to_string(In) + "x" + std::to_string(Out);
  for (int nt : {1, 2})
    for (bool backward : {false, true}) {
      const std::string pass = backward ? "fwd_bwd" : "fwd";
      const std::string suffix = "/" + pass + "/" + shape;  // Args add /batch:B/nt:N
      benchmark::RegisterBenchmark(("fused" + suffix).c_str(), block<fnn::fused, fnn::unfused, In, Out>, backward)
          ->Args({batch, nt})
          ->ArgNames({"batch", "nt"})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("unfused" + suffix).c_str(), block<fnn::unfused, fnn::fused, In, Out>, backward)
          ->Args({batch, nt})
          ->ArgNames({"batch", "nt"})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_shape<1024, 1024>(256);
  register_shape<784, 256>(128);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
