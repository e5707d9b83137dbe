// The element-wise passes of a fused dense + batch_norm + GELU stage (kernels/fused_block.hpp) on a B x F block:
// the forward map y = gelu(z * scale + shift) and the backward reduction (du and the two column sums), at 1 and
// 2 threads. It is how kernels::parallel_pass_elements was chosen: below it, a second thread does not pay.
//   counters: elements = B x F per pass.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "fnn/core/tensor.hpp"
#include "fnn/kernels/fused_block.hpp"
#include "fnn/kernels/threads.hpp"
#include "fnn/layers/activations.hpp"

namespace {

using fnn::index_t;

struct block final {
  index_t rows, cols;
  fnn::buffer<float> z, y, dy, du, scale, shift, mean, rstd, sum_du, sum_du_xhat;  // aligned, as in a stage
  block(index_t r, index_t c) : rows(r), cols(c) {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    const auto fill = [&](fnn::buffer<float>& v, std::size_t n) {
      v.resize(n);
      for (auto& x : v) x = dist(gen);
    };
    const auto n = static_cast<std::size_t>(r * c), f = static_cast<std::size_t>(c);
    for (auto* v : {&z, &y, &dy, &du}) fill(*v, n);
    for (auto* v : {&scale, &shift, &mean, &rstd, &sum_du, &sum_du_xhat}) fill(*v, f);
  }
};

void forward_map(benchmark::State& state) {
  block b(state.range(0), state.range(1));
  fnn::set_num_threads(int(state.range(2)));
  for (auto _ : state) {
    fnn::kernels::affine_activation<fnn::act::gelu_fn>(b.rows, b.cols, b.z.data(), b.cols, b.scale.data(), b.shift.data(),
                                                  b.y.data(), b.cols);
    benchmark::DoNotOptimize(b.y.data());
  }
  state.counters["elements"] = double(b.rows * b.cols);
  fnn::set_num_threads(0);
}

void backward_reduce(benchmark::State& state) {
  block b(state.range(0), state.range(1));
  fnn::set_num_threads(int(state.range(2)));
  for (auto _ : state) {
    fnn::kernels::affine_activation_backward_reduce<fnn::act::gelu_fn>(
        b.rows, b.cols, b.z.data(), b.cols, b.y.data(), b.cols, b.dy.data(), b.cols, b.scale.data(), b.shift.data(),
        b.mean.data(), b.rstd.data(), b.du.data(), b.cols, b.sum_du.data(), b.sum_du_xhat.data());
    benchmark::DoNotOptimize(b.du.data());
  }
  state.counters["elements"] = double(b.rows * b.cols);
  fnn::set_num_threads(0);
}

void shapes(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"B", "F", "nt"});
  for (int nt : {1, 2})
    for (index_t rows : {32, 64, 128, 256, 512, 1024}) bm->Args({rows, 256, nt});
  for (int nt : {1, 2}) bm->Args({256, 1024, nt});
  bm->UseRealTime();
}

BENCHMARK(forward_map)->Apply(shapes);
BENCHMARK(backward_reduce)->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
