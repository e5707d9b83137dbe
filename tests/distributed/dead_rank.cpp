// A data-parallel training loop in which rank 1 dies (SIGKILL, as the OOM killer or a lost host would end it)
// at step 3. Run by tests/distributed/dead_rank.sh, which requires the whole job to end within a bounded time
// with a message that names the dead rank, instead of rank 0 waiting forever in the next all-reduce.
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "fnn/distributed/data_parallel.hpp"
#include "fnn/fnn.hpp"
#include "fnn/optim/optim.hpp"

int main(int argc, char** argv) {
  fnn::distributed::environment mpi(argc, argv);
  fnn::distributed::communicator world;
  using net_t = fnn::sequential<fnn::input<64>, fnn::dense<64>, fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
  net_t net{fnn::seed{1}};
  fnn::distributed::data_parallel dp(net, world, {.sync_batch_norm = true});
  fnn::optim::adamw opt{{.lr = 1e-3f}};
  fnn::matrix<float> x(32, 64);
  std::vector<std::int32_t> y(32);
  std::mt19937 gen(std::uint32_t(world.rank()));
  for (fnn::index_t i = 0; i < 32; ++i) {
    for (fnn::index_t j = 0; j < 64; ++j) x(i, j) = float(gen() % 1000) / 1000.f;
    y[std::size_t(i)] = std::int32_t(gen() % 10);
  }
  for (int step = 0; step < 1000000; ++step) {
    if (world.rank() == 1 && step == 3) {
      std::printf("rank 1: dying at step 3\n");
      std::fflush(stdout);
      std::raise(SIGKILL);
    }
    dp.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  }
  std::printf("rank %d: finished, which a dead peer should have made impossible\n", world.rank());
  return 0;
}
