// GEMM throughput of a dense layer's forward product Y[M x N] = X[M x K] W[N x K]^T: fnn vs OpenBLAS vs oneDNN,
// and the machine's FMA peak measured with xsimd, each at 1 and 2 threads. Every timed result is checked once
// against gemm_reference (the benchmark fails with SkipWithError otherwise).
//
// Counters: "flop" = floating-point operations per iteration (2 M N K); GFLOP/s = flop / real_time.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "fnn/kernels/gemm.hpp"
#include "fnn/kernels/threads.hpp"
#include "fnn/simd/simd.hpp"

#if defined(FNN_HAS_OPENMP)
#include <omp.h>
#endif
#if defined(FNN_BENCH_OPENBLAS)
#include <cblas.h>
#endif
#if defined(FNN_BENCH_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace {

using fnn::index_t;
using fnn::kernels::transpose;

struct problem {
  index_t m, k, n;
  std::vector<float> x, w, y;
  const std::vector<float>& reference() {
    if (ref.empty()) {
      ref.assign(y.size(), 0.f);
      fnn::kernels::gemm_reference<float>(transpose::no, transpose::yes, m, n, k, 1.f, x.data(), k, w.data(), k, 0.f,
                                          ref.data(), n);
    }
    return ref;
  }

 private:
  std::vector<float> ref;
};

problem& get_problem(index_t m, index_t k, index_t n) {
  static std::map<std::tuple<index_t, index_t, index_t>, problem> cache;
  auto [it, fresh] = cache.try_emplace({m, k, n});
  problem& p = it->second;
  if (fresh) {
    p.m = m, p.k = k, p.n = n;
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    p.x.resize(static_cast<std::size_t>(m * k));
    p.w.resize(static_cast<std::size_t>(n * k));
    p.y.assign(static_cast<std::size_t>(m * n), 0.f);
    for (auto& v : p.x) v = dist(gen);
    for (auto& v : p.w) v = dist(gen);
  }
  return p;
}

// True when y matches the reference within float rounding of a length-k dot product of [-1, 1] values.
bool verify(problem& p, std::string& why) {
  const auto& ref = p.reference();
  const double tol = 1e-6 * double(p.k) + 1e-5;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    if (!(std::abs(double(p.y[i]) - double(ref[i])) <= tol)) {
      why = "mismatch at " + std::to_string(i) + ": " + std::to_string(p.y[i]) + " vs " + std::to_string(ref[i]);
      return false;
    }
  }
  return true;
}

void set_threads(int t) {
  fnn::set_num_threads(t);
#if defined(FNN_HAS_OPENMP)
  omp_set_num_threads(t);  // oneDNN (OpenMP runtime in Debian's build)
#endif
#if defined(FNN_BENCH_OPENBLAS)
  openblas_set_num_threads(t);
#endif
}

// Runs `body` once, checks the result, then times it.
template <class Body>
void run_timed(benchmark::State& state, problem& p, Body&& body) {
  std::fill(p.y.begin(), p.y.end(), -7.f);
  body();
  std::string why;
  if (!verify(p, why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  for (auto _ : state) {
    body();
    benchmark::DoNotOptimize(p.y.data());
    benchmark::ClobberMemory();
  }
  const double flop = 2.0 * double(p.m) * double(p.n) * double(p.k);
  state.counters["flop"] = flop;
  state.counters["threads"] = static_cast<double>(state.range(3));
  state.counters["GFLOPS"] = benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_fnn(benchmark::State& state) {
  problem& p = get_problem(state.range(0), state.range(1), state.range(2));
  set_threads(static_cast<int>(state.range(3)));
  run_timed(state, p, [&] {
    fnn::kernels::gemm<float>(transpose::no, transpose::yes, p.m, p.n, p.k, 1.f, p.x.data(), p.k, p.w.data(), p.k,
                              0.f, p.y.data(), p.n);
  });
  state.SetLabel(fnn::simd::arch_name());
}

#if defined(FNN_BENCH_OPENBLAS)
void bm_openblas(benchmark::State& state) {
  problem& p = get_problem(state.range(0), state.range(1), state.range(2));
  set_threads(static_cast<int>(state.range(3)));
  run_timed(state, p, [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(p.m), static_cast<int>(p.n),
                static_cast<int>(p.k), 1.f, p.x.data(), static_cast<int>(p.k), p.w.data(), static_cast<int>(p.k), 0.f,
                p.y.data(), static_cast<int>(p.n));
  });
}
#endif

#if defined(FNN_BENCH_ONEDNN)
void bm_onednn(benchmark::State& state) {
  problem& p = get_problem(state.range(0), state.range(1), state.range(2));
  set_threads(static_cast<int>(state.range(3)));
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  // W is stored N x K: as the K x N weights of matmul it has strides {1, K}.
  const dnnl::memory::desc src_md({p.m, p.k}, dt::f32, tag::ab);
  const dnnl::memory::desc wei_md({p.k, p.n}, dt::f32, dnnl::memory::dims{1, p.k});
  const dnnl::memory::desc dst_md({p.m, p.n}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wei_md, dst_md), eng);
  const dnnl::matmul prim(pd);
  dnnl::memory src(src_md, eng, p.x.data()), wei(wei_md, eng, p.w.data()), dst(dst_md, eng, p.y.data());
  run_timed(state, p, [&] {
    prim.execute(strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    strm.wait();
  });
  state.SetLabel(pd.impl_info_str());
}
#endif

// The FMA peak: `chains` independent accumulator registers, each updated by one FMA per step, so the loop is
// bound by FMA throughput, not latency (Zen 5: 2 FMA pipes x 4 cycles latency needs >= 8 chains).
template <int chains>
double fma_loop(long steps) {
  using V = fnn::simd::batch<float>;
  float xs = 0.999999f, ys = 1e-7f;
  benchmark::DoNotOptimize(xs);
  benchmark::DoNotOptimize(ys);
  const V x(xs), y(ys);
  V acc[chains];
  for (int i = 0; i < chains; ++i) acc[i] = V(float(i));
  for (long s = 0; s < steps; ++s) {
#pragma GCC unroll 32
    for (int i = 0; i < chains; ++i) acc[i] = fnn::simd::fma(acc[i], x, y);
  }
  V sum = acc[0];
  for (int i = 1; i < chains; ++i) sum = sum + acc[i];
  float out[V::size];
  sum.store_unaligned(out);
  return double(out[0]);
}

void bm_peak(benchmark::State& state) {
  constexpr int chains = 24;
  constexpr long steps = 1 << 16;
  const int threads = static_cast<int>(state.range(3));
  set_threads(threads);
  for (auto _ : state) {
    double r = 0;
#if defined(FNN_HAS_OPENMP)
#pragma omp parallel num_threads(threads) reduction(+ : r)
#endif
    r += fma_loop<chains>(steps);
    benchmark::DoNotOptimize(r);
  }
  const double flop = 2.0 * chains * double(fnn::simd::batch<float>::size) * double(steps) * threads;
  state.counters["flop"] = flop;
  state.counters["threads"] = threads;
  state.counters["GFLOPS"] = benchmark::Counter(flop * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(fnn::simd::arch_name());
}

// M (batch), K (in), N (out), threads.
void shapes(benchmark::internal::Benchmark* b) {
  for (int t : {1, 2})
    for (auto [m, k, n] : {std::tuple{256, 784, 1024}, std::tuple{256, 1024, 1024}, std::tuple{1024, 1024, 1024},
                           std::tuple{32, 256, 256}, std::tuple{256, 1024, 10}, std::tuple{1, 784, 256}})
      b->Args({m, k, n, t});
  b->ArgNames({"M", "K", "N", "threads"})->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(bm_peak)->Args({0, 0, 0, 1})->Args({0, 0, 0, 2})->ArgNames({"M", "K", "N", "threads"})->UseRealTime();
BENCHMARK(bm_fnn)->Apply(shapes);
#if defined(FNN_BENCH_OPENBLAS)
BENCHMARK(bm_openblas)->Apply(shapes);
#endif
#if defined(FNN_BENCH_ONEDNN)
BENCHMARK(bm_onednn)->Apply(shapes);
#endif

BENCHMARK_MAIN();
