// The main job (784-256-256-10, dense + batch_norm + gelu twice, AdamW lr 1e-3 weight decay 1e-2, cosine
// schedule over all steps, pixels / 255) trained data-parallel on Fashion-MNIST: `mpirun -np N
// fnn_bench_dp_train [--batch B] [--epochs E] [--sync-bn] [--overlap 0|1] [--bucket-kb K]`. B is the per-rank batch; the global
// batch is B x N. Every epoch's permutation is the same on every rank (seeded); rank r takes rows [rB, (r+1)B)
// of each global batch. Prints the training samples per second (global, data loading and test evaluation
// excluded) and rank 0's test accuracy. Single-process: `fnn_bench_dp_train` without mpirun (N = 1).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fnn/distributed/data_parallel.hpp"
#include "fnn/fnn.hpp"
#include "fnn/io/mnist.hpp"
#include "fnn/optim/optim.hpp"
#include "fnn/kernels/threads.hpp"

namespace {
using net_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                              fnn::batch_norm, fnn::gelu, fnn::dense<10>>;

double test_accuracy(net_t& net, const fnn::io::mnist_data& test) {
  std::int64_t correct = 0;
  for (fnn::index_t b = 0; b < test.size(); b += 1000) {
    const fnn::index_t n = std::min<fnn::index_t>(1000, test.size() - b);
    const auto y = net.infer_view(test.images.view().rows_slice(b, n));
    for (fnn::index_t i = 0; i < n; ++i) {
      const float* row = y.row(i);
      correct += std::max_element(row, row + 10) - row == test.labels[std::size_t(b + i)];
    }
  }
  return double(correct) / double(test.size());
}
}  // namespace

int main(int argc, char** argv) {
  fnn::distributed::environment mpi(argc, argv);
  fnn::distributed::communicator world;
  int batch = 128, epochs = 1;
  bool sync_bn = false, overlap = true;
  long bucket_kb = 25 * 1024;  // DDP's 25 MB
  std::filesystem::path data = "/usr/share/datasets/fashion-mnist";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "--batch") batch = std::stoi(value());
    else if (a == "--epochs") epochs = std::stoi(value());
    else if (a == "--data") data = value();
    else if (a == "--sync-bn") sync_bn = true;
    else if (a == "--overlap") overlap = value() != "0";
    else if (a == "--bucket-kb") bucket_kb = std::stol(value());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  fnn::set_num_threads(1);  // one thread per process: N processes on N cores
  const auto train = fnn::io::load_mnist(data, fnn::io::split::train);
  const auto test = fnn::io::load_mnist(data, fnn::io::split::test);
  net_t net{fnn::seed{42}};
  fnn::distributed::data_parallel dp(
      net, world, {.bucket_bytes = std::size_t(bucket_kb) << 10, .overlap = overlap, .sync_batch_norm = sync_bn});
  fnn::optim::adamw opt{{.lr = 1e-3f, .weight_decay = 1e-2f}};
  const fnn::index_t global = fnn::index_t(batch) * world.size();
  const std::int64_t steps = train.size() / global;  // full global batches only
  fnn::optim::cosine_annealing_lr schedule(1e-3, std::max<std::int64_t>(steps * epochs, 1));
  std::vector<std::int32_t> order(std::size_t(train.size()));
  fnn::matrix<float> x(batch, 784);
  std::vector<std::int32_t> y(static_cast<std::size_t>(batch));
  double seconds = 0;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 gen(42 + std::uint64_t(epoch));
    std::shuffle(order.begin(), order.end(), gen);  // same binary, same seed: the same order on every rank
    world.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0;
    for (std::int64_t s = 0; s < steps; ++s) {
      const std::size_t first = std::size_t(s * global + fnn::index_t(world.rank()) * batch);
      for (int i = 0; i < batch; ++i) {
        const std::int32_t row = order[first + std::size_t(i)];
        std::memcpy(x.row(i), train.images.row(row), 784 * sizeof(float));
        y[std::size_t(i)] = train.labels[std::size_t(row)];
      }
      opt.set_lr(float(schedule.lr_at(opt.step_count())));
      loss_sum += dp.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt).loss;
    }
    world.barrier();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    seconds += dt;
    if (world.rank() == 0)
      std::printf("epoch %d: loss %.4f, %.2f s, %.0f samples/s, test accuracy %.4f\n", epoch + 1,
                  loss_sum / double(steps), dt, double(steps * global) / dt, test_accuracy(net, test));
  }
  dp.check_replicas_identical();
  if (world.rank() == 0)
    std::printf("ranks %d, batch %d per rank (%ld global), sync_bn %d, overlap %d, buckets %zu: %.0f samples/s, "
                "test accuracy %.4f\n",
                world.size(), batch, long(global), int(sync_bn), int(overlap), dp.bucket_count(),
                double(steps * global * epochs) / seconds, test_accuracy(net, test));
  return 0;
}
