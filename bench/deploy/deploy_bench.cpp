// Batch-1 latency of the main job's network (784-256-256-10, dense + batch norm + GELU blocks):
//   deploy/predict   fnn::deploy::freeze(net)->predict (folded once, scalar kernels, no allocation)
//   infer            net.infer() (batch 1: kernels::gemv, batch norm applied on the product's output side)
//   read_weights     one pass over the deploy model's 1.08 MB of weights as 32-bit integers (vectorized sum):
//                    the time to read the weights once from cache, the floor for a batch-1 inference
// PyTorch's eval-mode twin is torch_deploy.py; scripts/bench_deploy.sh runs both and writes bench/results/deploy.md.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "fnn/deploy/freeze.hpp"
#include "fnn/fnn.hpp"

namespace {

using net_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                              fnn::batch_norm, fnn::gelu, fnn::dense<10>>;

struct fixture {
  net_t net{fnn::seed{42}};
  std::unique_ptr<fnn::deploy::model_of<net_t>> model = fnn::deploy::freeze(net);
  std::vector<float> x = std::vector<float>(784, 0.25f);
};
fixture& the() {
  static fixture f;
  return f;
}

void deploy_predict(benchmark::State& s) {
  auto& f = the();
  float y[10];
  for (auto _ : s) {
    f.model->predict(f.x.data(), y);
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(deploy_predict);

void infer(benchmark::State& s) {
  auto& f = the();
  const fnn::const_matrix_view<float> x(f.x.data(), 1, 784);
  for (auto _ : s) {
    auto y = f.net.infer_view(x);  // the network's own buffer: no allocation timed, as before infer() returned a copy
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(infer);

void read_weights(benchmark::State& s) {
  auto& f = the();
  const auto* p = reinterpret_cast<const std::uint32_t*>(&f.model->params);
  const std::size_t n = sizeof(f.model->params) / 4;
  for (auto _ : s) {
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += p[i];
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  s.counters["bytes"] = double(n * 4);
}
BENCHMARK(read_weights);

}  // namespace

BENCHMARK_MAIN();
