// What freezing saves in backward (transfer learning, network::freeze): the main job's 784-256-256-10 network (dense,
// batch_norm, gelu twice, then dense<10>), batch 128, train mode, one thread, three cases:   none        every layer
// trains   dense0      freeze(0): the first dense layer (W 256x784, b) takes no   gradient: its dW product is skipped
// stage0      freeze_layers(0, 3): the   whole first dense + batch_norm + gelu stage, its statistics fixed:
// backward ends at the second stage, which then needs no input               gradient either Timed (manual time, median
// over repetitions): backward alone, net.backward(dy) after a train-mode forward (zero_grad and forward outside the
// timed region). Checked before timing: the frozen parameters' gradients are zero and the trained ones are those of the
// unfrozen network (dense0; stage0 normalizes with running statistics, so only the head's gradients are compared to a
// network whose first stage is frozen the slow way, by hand).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/kernels/threads.hpp"
#include "fnn/optim/adam.hpp"

namespace {

using net_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                              fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
constexpr fnn::index_t batch = 128;

fnn::matrix<float> random_matrix(fnn::index_t rows, fnn::index_t cols, std::uint64_t seed) {
  fnn::matrix<float> m(rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float &v : m.flat()) v = dist(rng);
  return m;
}

void freeze(net_t &net, int which) {
  if (which == 1) net.freeze(0);
  if (which == 2) net.freeze_layers(0, 3);
}

std::vector<std::vector<float>> grads(net_t &net) {
  std::vector<std::vector<float>> g;
  net.for_each_parameter([&](auto &p) { g.emplace_back(p.grad.begin(), p.grad.end()); });
  return g;
}

// The frozen gradients are zero and, for dense0, the others equal the unfrozen network's.
bool check(int which, const fnn::matrix<float> &x, const fnn::matrix<float> &dy) {
  net_t a{fnn::seed{42}}, b{fnn::seed{42}};
  freeze(b, which);
  for (net_t *n : {&a, &b}) {
    n->zero_grad();
    n->forward(x.view(), fnn::mode::train);
    n->backward(dy.view());
  }
  const auto ga = grads(a), gb = grads(b);
  const std::size_t frozen = which == 0 ? 0 : which == 1 ? 2 : 4;
  for (std::size_t k = 0; k < ga.size(); ++k)
    for (std::size_t i = 0; i < ga[k].size(); ++i) {
      if (k < frozen && gb[k][i] != 0.0f) return false;
      if (k >= frozen && which < 2 && std::abs(gb[k][i] - ga[k][i]) > 1e-5f * (1 + std::abs(ga[k][i]))) return false;
    }
  return true;
}

void backward(benchmark::State &state) {
  fnn::set_num_threads(1);
  const int which = int(state.range(0));
  const auto x = random_matrix(batch, 784, 1);
  const auto dy = random_matrix(batch, 10, 2);
  if (!check(which, x, dy)) {
    state.SkipWithError("frozen gradients are not zero or the trained ones changed");
    return;
  }
  net_t net{fnn::seed{42}};
  freeze(net, which);
  for (auto _ : state) {
    net.zero_grad();
    net.forward(x.view(), fnn::mode::train);
    const auto t0 = std::chrono::steady_clock::now();
    net.backward(dy.view());
    const auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
  state.SetLabel(which == 0 ? "none" : which == 1 ? "dense0" : "stage0");
}
BENCHMARK(backward)->Arg(0)->Arg(1)->Arg(2)->UseManualTime()->Unit(benchmark::kMicrosecond)->MinTime(0.5);

// A whole AdamW train_step (zero_grad, forward, loss, backward, update), wall time.
void train_step(benchmark::State &state) {
  fnn::set_num_threads(1);
  const int which = int(state.range(0));
  const auto x = random_matrix(batch, 784, 1);
  std::vector<std::int32_t> labels(batch);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int32_t(i % 10);
  net_t net{fnn::seed{42}};
  freeze(net, which);
  fnn::optim::adamw opt{{.lr = 1e-3f, .weight_decay = 1e-2f}};
  for (auto _ : state)
    benchmark::DoNotOptimize(net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, opt));
  state.SetLabel(which == 0 ? "none" : which == 1 ? "dense0" : "stage0");
}
BENCHMARK(train_step)->Arg(0)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.5);

}  // namespace

BENCHMARK_MAIN();
