// Must not compile: a network whose input has 0 features.
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<1>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<0>, fnn::dense<2>>;
#endif
int main() { return net_t::out_features == 2 ? 0 : 1; }
