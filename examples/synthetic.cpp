// The smallest complete fnn program: a typed MLP learns three Gaussian blobs in 16-D and prints
// its loss falling. Build: cmake --preset release && cmake --build --preset release --target fnn_synthetic
#include <cstdio>
#include <random>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/optim/sgd.hpp"

int main() {
  using net_t = fnn::sequential<fnn::input<16>,                                 //
                                fnn::dense<64>, fnn::batch_norm, fnn::gelu,     // in-features inferred: 16
                                fnn::dense<64>, fnn::batch_norm, fnn::gelu,     //
                                fnn::dense<3>>;                                 // logits
  net_t net{fnn::seed{42}};
  std::printf("%s", net.summary().c_str());

  // Three classes, each a Gaussian blob shifted along its own features.
  const fnn::index_t n = 3000, batch = 100;
  std::mt19937 gen(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  fnn::matrix<float> x(n, 16);
  std::vector<std::int32_t> y(n);
  for (fnn::index_t i = 0; i < n; ++i) {
    y[std::size_t(i)] = std::int32_t(i % 3);
    for (fnn::index_t j = 0; j < 16; ++j) x(i, j) = noise(gen) + (j % 3 == i % 3 ? 1.5f : 0.0f);
  }

  fnn::optim::sgd opt{{.lr = 0.05f, .momentum = 0.9f}};
  const fnn::loss::softmax_cross_entropy loss;
  for (int epoch = 1; epoch <= 10; ++epoch) {
    double sum = 0;
    for (fnn::index_t b = 0; b < n; b += batch) {
      const std::span<const std::int32_t> labels(y.data() + b, std::size_t(batch));
      sum += net.train_step(x.view().rows_slice(b, batch), labels, loss, opt);
    }
    std::printf("epoch %2d  loss %.4f\n", epoch, sum / double(n / batch));
  }

  const auto logits = net.infer(x.view());
  std::size_t correct = 0;
  for (fnn::index_t i = 0; i < n; ++i) {
    fnn::index_t best = 0;
    for (fnn::index_t c = 1; c < 3; ++c)
      if (logits(i, c) > logits(i, best)) best = c;
    correct += best == y[std::size_t(i)];
  }
  std::printf("train accuracy %.3f\n", double(correct) / double(n));
}
