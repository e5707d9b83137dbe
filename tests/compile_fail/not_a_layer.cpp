// Must not compile: an arbitrary type in the layer list; training the network must not add errors.
#include <cstdint>
#include <vector>

#include "fnn/layers/dense.hpp"
#include "fnn/layers/losses.hpp"
#include "fnn/network/sequential.hpp"
#include "fnn/optim/sgd.hpp"
struct my_type {};
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<8>, my_type, fnn::dense<2>>;
#endif
int main() {
  net_t net;
  fnn::matrix<float> x(2, 4);
  std::vector<std::int32_t> labels{0, 1};
  fnn::optim::sgd opt;
  return net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, opt) > 0 ? 0 : 1;
}
