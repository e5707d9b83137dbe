// Must not compile: dense takes one or two sizes.
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<4, 8>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<4, 8, 2>>;
#endif
int main() { return net_t::out_features == 8 ? 0 : 1; }
