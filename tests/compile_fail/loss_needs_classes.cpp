// Must not compile: softmax cross-entropy on a network with a single output.
#include <cstdint>
#include <vector>

#include "fnn/layers/dense.hpp"
#include "fnn/layers/losses.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<1>>;
#endif
int main() {
  net_t net;
  fnn::matrix<float> x(2, 4);
  std::vector<std::int32_t> labels{0, 0};
  return net.compute_gradients(x.view(), labels, fnn::loss::softmax_cross_entropy{}, fnn::mode::train) > 0 ? 0 : 1;
}
