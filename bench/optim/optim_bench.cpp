// One optimizer step over N float parameters, single thread, against the memory roofline measured in
// the same run (STREAM triad a = b + s * c) and against plain -O3 loops of the same formula.
// Bytes counted: AdamW 28 B/param (read p g m v, write p m v), SGD-momentum and RMSProp 20 B/param
// (read p g s, write p s), triad 12 B/element. Sizes 1M, 16M, 64M; the 2K size (L1/L2 resident) shows
// the arithmetic ceiling of each kernel (sqrt and division throughput), not memory.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>

#include "fnn/core/tensor.hpp"
#include "fnn/optim/adam.hpp"
#include "fnn/optim/rmsprop.hpp"
#include "fnn/optim/sgd.hpp"

namespace {

fnn::buffer<float> filled(std::size_t n, float v) { return fnn::buffer<float>(n, v); }

void set_counters(benchmark::State& state, std::size_t n, std::size_t bytes_per_param) {
  const auto iters = static_cast<std::int64_t>(state.iterations());
  state.SetItemsProcessed(iters * static_cast<std::int64_t>(n));
  state.SetBytesProcessed(iters * static_cast<std::int64_t>(n * bytes_per_param));
}

void triad(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto a = filled(n, 0), b = filled(n, 1), c = filled(n, 2);
  const float s = 3.0f;
  for (auto _ : state) {
    float* __restrict pa = a.data();
    const float* __restrict pb = b.data();
    const float* __restrict pc = c.data();
    for (std::size_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n, 12);
}

// The same step as fnn's AdamW, written as the obvious loop (what a user would write without fnn).
__attribute__((noinline)) void adamw_plain(float* p, const float* g, float* m, float* v, std::size_t n, float lr,
                                           float wd, float b1, float b2, float eps, float step_size,
                                           float inv_bc2_sqrt) {
  for (std::size_t i = 0; i < n; ++i) {
    p[i] *= 1.0f - lr * wd;
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    p[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_bc2_sqrt + eps);
  }
}

void adamw_plain_loop(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto p = filled(n, 0.5f), g = filled(n, 0.01f), m = filled(n, 0), v = filled(n, 0);
  for (auto _ : state) {
    adamw_plain(p.data(), g.data(), m.data(), v.data(), n, 1e-3f, 1e-2f, 0.9f, 0.999f, 1e-8f, 1e-2f, 31.6f);
    benchmark::ClobberMemory();
  }
  set_counters(state, n, 28);
}

template <class Opt>
void optimizer_step(benchmark::State& state, Opt opt, std::size_t bytes_per_param) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto p = filled(n, 0.5f), g = filled(n, 0.01f);
  opt.step(std::span<float>(p), std::span<const float>(g));  // allocates the state outside the timing
  for (auto _ : state) {
    opt.step(std::span<float>(p), std::span<const float>(g));
    benchmark::ClobberMemory();
  }
  set_counters(state, n, bytes_per_param);
}

void fnn_adamw(benchmark::State& state) { optimizer_step(state, fnn::optim::adamw({.lr = 1e-3f}), 28); }
void fnn_sgd_momentum(benchmark::State& state) {
  optimizer_step(state, fnn::optim::sgd({.lr = 1e-3f, .momentum = 0.9f}), 20);
}
void fnn_rmsprop(benchmark::State& state) { optimizer_step(state, fnn::optim::rmsprop({.lr = 1e-3f}), 20); }

void sizes(benchmark::internal::Benchmark* b) {
  b->Arg(2048)->Arg(1 << 20)->Arg(16 << 20)->Arg(64 << 20)->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(triad)->Apply(sizes);
BENCHMARK(fnn_adamw)->Apply(sizes);
BENCHMARK(adamw_plain_loop)->Apply(sizes);
BENCHMARK(fnn_sgd_momentum)->Apply(sizes);
BENCHMARK(fnn_rmsprop)->Apply(sizes);

BENCHMARK_MAIN();
