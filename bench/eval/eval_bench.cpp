// Eval-mode (inference) latency of fused MLPs, one thread (scripts/bench_eval.sh runs it against PyTorch,
// bench/eval/torch_eval.py, and writes bench/results/eval.md):
//   infer_big/B     net.infer_view on B samples of 784-1024-1024-10 (dense + batch norm + GELU blocks; 7.4 MB of
//                   float weights: from L3 or memory, bandwidth-bound at batch 1)
//   infer_main/B    the same for the main job's 784-256-256-10 (1.08 MB of weights: about L2-sized here)
//   read_big, read_main   one pass over exactly the weights those networks read (every parameter array, as
//                   32-bit integers, vectorized sum): the time to read them once from where they live, the floor
//                   of a batch-1 inference
//   deploy_main     fnn::deploy::freeze(main)->predict, batch 1 (the float deploy model, folded once)
//   block_gemm_then_pass/B, block_prefolded/B   (headers with kernels/gemv.hpp only) the GEMM path of an eval
//                   1024 -> 1024 dense + batch norm + GELU at batch B: what infer runs (plain GEMM, then one
//                   scale/shift/GELU pass) against a GEMM on weights folded beforehand with the affine map and
//                   GELU in its epilogue (what a cached fold would run); both read the same weights.
// Built against other headers (scripts/bench_eval.sh BASE=<commit>), the same source times an older infer.
// What is timed is checked first: each network's infer equals its unfused twin (same parameters) to 1e-4,
// else SkipWithError.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "fnn/deploy/freeze.hpp"
#include "fnn/fnn.hpp"
#if __has_include("fnn/kernels/gemv.hpp")
#include "fnn/kernels/gemv.hpp"
#define FNN_BENCH_HAS_GEMV 1
#endif

namespace {

template <class P, std::size_t H>
using mlp = fnn::network<P, float, fnn::input<784>, fnn::dense<H>, fnn::batch_norm, fnn::gelu, fnn::dense<H>,
                         fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
using big_t = mlp<fnn::fused, 1024>;
using main_t = mlp<fnn::fused, 256>;

fnn::matrix<float> random_matrix(fnn::index_t rows, fnn::index_t cols, std::uint64_t seed, float scale = 1.f) {
  fnn::matrix<float> m(rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  for (float& v : m.flat()) v = dist(rng);
  return m;
}

// A network with trained-looking running statistics (a few train-mode forwards), and its unfused twin.
template <class Net>
std::unique_ptr<Net> make_net() {
  auto net = std::make_unique<Net>(fnn::seed{42});
  for (int s = 0; s < 3; ++s) net->forward(random_matrix(64, 784, 7 + s).view(), fnn::mode::train);
  return net;
}

template <class Net>
double error_against_unfused(Net& net, const fnn::matrix<float>& x) {
  using twin_t = mlp<fnn::unfused, Net::template layer_type<0>::out_features>;
  twin_t twin{fnn::seed{1}};
  std::vector<std::vector<float>> v;
  net.for_each_parameter([&](auto& p) { v.emplace_back(p.value.begin(), p.value.end()); });
  net.for_each_buffer([&](auto& b) { v.emplace_back(b.value.begin(), b.value.end()); });
  std::size_t i = 0;
  twin.for_each_parameter([&](auto& p) { std::copy(v[i].begin(), v[i].end(), p.value.begin()), ++i; });
  twin.for_each_buffer([&](auto& b) { std::copy(v[i].begin(), v[i].end(), b.value.begin()), ++i; });
  const auto a = net.infer(x.view());
  const auto b = twin.infer(x.view());
  double d = 0, s = 1;
  for (fnn::index_t k = 0; k < a.size(); ++k) {
    d = std::max(d, std::abs(double(a.flat()[std::size_t(k)]) - double(b.flat()[std::size_t(k)])));
    s = std::max(s, std::abs(double(b.flat()[std::size_t(k)])));
  }
  return d / s;
}

template <class Net>
Net& the_net() {
  static std::unique_ptr<Net> net = make_net<Net>();
  return *net;
}

template <class Net>
void infer(benchmark::State& s) {
  fnn::set_num_threads(1);
  auto& net = the_net<Net>();
  const auto x = random_matrix(s.range(0), 784, 99);
  if (const double e = error_against_unfused(net, x); !(e < 1e-4)) {
    s.SkipWithError(("infer differs from the unfused reference: " + std::to_string(e)).c_str());
    return;
  }
  for (auto _ : s) {
    auto y = net.infer_view(x.view());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  s.SetItemsProcessed(s.iterations() * s.range(0));
}
BENCHMARK(infer<big_t>)->Name("infer_big")->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->Arg(17)->Arg(64);
BENCHMARK(infer<main_t>)->Name("infer_main")->Arg(1)->Arg(4)->Arg(8);

// Sums every parameter array of the network as 32-bit integers: the bytes the batch-1 inference must read.
template <class Net>
void read_weights(benchmark::State& s) {
  auto& net = the_net<Net>();
  std::vector<std::span<const std::uint32_t>> arrays;
  std::size_t bytes = 0;
  net.for_each_parameter([&](auto& p) {
    arrays.emplace_back(reinterpret_cast<const std::uint32_t*>(p.value.data()), p.value.size());
    bytes += p.value.size() * 4;
  });
  for (auto _ : s) {
    std::uint32_t sum = 0;
    for (const auto a : arrays)
      for (const std::uint32_t v : a) sum += v;
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  s.counters["bytes"] = double(bytes);
  s.SetBytesProcessed(std::int64_t(s.iterations()) * std::int64_t(bytes));
}
BENCHMARK(read_weights<big_t>)->Name("read_big");
BENCHMARK(read_weights<main_t>)->Name("read_main");

void deploy_main(benchmark::State& s) {
  static auto model = fnn::deploy::freeze(the_net<main_t>());
  const auto x = random_matrix(1, 784, 99);
  float y[10];
  for (auto _ : s) {
    model->predict(x.data(), y);
    benchmark::DoNotOptimize(y);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(deploy_main);

#if defined(FNN_BENCH_HAS_GEMV)
// The eval GEMM path of one 1024 -> 1024 block: as infer runs it, and with the fold precomputed.
struct block_data {
  static constexpr fnn::index_t f = 1024, in = 1024;
  fnn::matrix<float> w = random_matrix(f, in, 3, 0.03f), folded = fnn::matrix<float>(f, in);
  std::vector<float> scale = std::vector<float>(f), shift = std::vector<float>(f);
  block_data() {
    for (fnn::index_t o = 0; o < f; ++o) {
      scale[std::size_t(o)] = 0.5f + float(o % 7) * 0.1f;
      shift[std::size_t(o)] = float(o % 5) * 0.1f - 0.2f;
      for (fnn::index_t k = 0; k < in; ++k) folded(o, k) = w(o, k) * scale[std::size_t(o)];
    }
  }
};

void block_gemm_then_pass(benchmark::State& s) {
  fnn::set_num_threads(1);
  static block_data d;
  const auto x = random_matrix(s.range(0), d.in, 5);
  fnn::matrix<float> z(s.range(0), d.f), y(s.range(0), d.f);
  using fnn::kernels::transpose;
  for (auto _ : s) {
    fnn::kernels::gemm(transpose::no, transpose::yes, x.rows(), d.f, d.in, 1.f, x.data(), d.in, d.w.data(), d.in, 0.f,
                       z.data(), d.f, fnn::kernels::stage_epilogue<float>{});
    fnn::kernels::affine_activation<fnn::gelu::function>(x.rows(), d.f, z.data(), d.f, d.scale.data(), d.shift.data(),
                                                         y.data(), d.f);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(block_gemm_then_pass)->Arg(32)->Arg(64)->Arg(256);

void block_prefolded(benchmark::State& s) {
  fnn::set_num_threads(1);
  static block_data d;
  const auto x = random_matrix(s.range(0), d.in, 5);
  fnn::matrix<float> y(s.range(0), d.f);
  using fnn::kernels::transpose;
  fnn::kernels::stage_epilogue<float> ep;
  ep.bias = d.shift.data();
  ep = fnn::kernels::with_activation<fnn::gelu::function>(ep);
  for (auto _ : s) {
    fnn::kernels::gemm(transpose::no, transpose::yes, x.rows(), d.f, d.in, 1.f, x.data(), d.in, d.folded.data(), d.in,
                       0.f, y.data(), d.f, ep);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(block_prefolded)->Arg(32)->Arg(64)->Arg(256);

// The product alone on m rows, 1024 x 1024 weights (4 MB): gemv against the GEMM (which takes its dot-product
// path for m <= 4), to place kernels::gemv_max_rows.
template <bool Gemv>
void product(benchmark::State& s) {
  fnn::set_num_threads(1);
  static block_data d;
  const auto x = random_matrix(s.range(0), d.in, 5);
  fnn::matrix<float> y(s.range(0), d.f);
  using fnn::kernels::transpose;
  fnn::kernels::stage_epilogue<float> ep;
  for (auto _ : s) {
    if constexpr (Gemv) {
      fnn::kernels::gemv(x.rows(), d.f, d.in, x.data(), d.in, d.w.data(), d.in, y.data(), d.f, ep);
    } else {
      fnn::kernels::gemm(transpose::no, transpose::yes, x.rows(), d.f, d.in, 1.f, x.data(), d.in, d.w.data(), d.in, 0.f,
                         y.data(), d.f, ep);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(product<true>)->Name("product_gemv")->DenseRange(1, 8)->Arg(12)->Arg(16)->Arg(24)->Arg(32);
BENCHMARK(product<false>)->Name("product_gemm")->DenseRange(1, 8)->Arg(12)->Arg(16)->Arg(24)->Arg(32);
#endif

}  // namespace

BENCHMARK_MAIN();
