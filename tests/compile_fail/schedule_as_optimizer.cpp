// Must not compile: a learning-rate schedule passed to train_step as the optimizer.
#include <cstdint>
#include <vector>

#include "fnn/layers/activations.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/layers/losses.hpp"
#include "fnn/network/sequential.hpp"
#include "fnn/optim/optim.hpp"
int main() {
  fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::relu, fnn::dense<2>> net;
  fnn::matrix<float> x(2, 4);
  std::vector<std::int32_t> labels{0, 1};
#ifdef FNN_TWIN
  fnn::optim::sgd opt;
#else
  fnn::optim::step_lr opt(0.1, 10);
#endif
  return net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, opt) > 0 ? 0 : 1;
}
