// Must not compile: elu with alpha = 0 (the first layer, index 0).
#include "fnn/layers/activations.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::elu<1.0>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::elu<0.0>, fnn::dense<2>>;
#endif
int main() { return net_t::out_features == 2 ? 0 : 1; }
