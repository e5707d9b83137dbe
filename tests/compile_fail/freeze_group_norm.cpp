// Must not compile: freezing a network with a group_norm (fnn::deploy has no such layer); the twin uses
// layer_norm, which freezes.
#include "fnn/deploy/freeze.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/layers/group_norm.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<12>, fnn::layer_norm, fnn::relu, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<12>, fnn::group_norm<3>, fnn::relu, fnn::dense<2>>;
#endif
int main() {
  net_t net;
  auto m = fnn::deploy::freeze(net);
  return m ? 0 : 1;
}
