// The model of the Cortex-M0+ test (256 KB of flash hold neither the main job's 1 MB of weights nor its 2 KB of
// scratch next to 16 KB of RAM): 784-32-10 with the main job's block (dense, batch norm, GELU), trained here
// for two epochs of Adam on the first 10000 Fashion-MNIST training images, saved with "fnn.layers" as
// fnn-train saves its model.   make_small_model <fashion-mnist dir> <model.safetensors>
#include <cstdio>
#include <exception>
#include <numeric>
#include <random>
#include <vector>

#include "small_net.hpp"
#include "trainer.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <fashion-mnist dir> <model.safetensors>\n", argv[0]);
    return 2;
  }
  try {
    const auto train = fnn_train::load_split(argv[1], fnn::io::split::train, 10000);
    fnn::matrix<float> x(train.size(), 784);
    train.to_float(0, train.size(), x.data());
    small_net net{fnn::seed{42}};
    fnn::optim::adam opt{{.lr = 2e-3f}};
    const fnn::loss::softmax_cross_entropy ce;
    std::vector<fnn::index_t> order(std::size_t(train.size()));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(42);
    constexpr fnn::index_t batch = 100;
    fnn::matrix<float> xb(batch, 784);
    std::vector<std::int32_t> yb(batch);
    float loss = 0;
    for (int epoch = 0; epoch < 2; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      for (fnn::index_t first = 0; first + batch <= train.size(); first += batch) {
        for (fnn::index_t i = 0; i < batch; ++i) {
          const fnn::index_t s = order[std::size_t(first + i)];
          std::copy(x.view().row(s), x.view().row(s) + 784, xb.view().row(i));
          yb[std::size_t(i)] = train.y[std::size_t(s)];
        }
        loss = net.train_step(xb.view(), std::span<const std::int32_t>(yb), ce, opt);
      }
    }
    fnn::io::save_model(argv[2], net, {{"format", "pt"}, {"fnn.layers", fnn::layers_text<small_net>()}});
    std::printf("make_small_model: 784-32-10, last batch loss %.3f -> %s\n", double(loss), argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_small_model: %s\n", e.what());
    return 1;
  }
}
