// Must not compile: a network with an input and no layer.
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>>;
#endif
int main() { return net_t::in_features == 4 ? 0 : 1; }
