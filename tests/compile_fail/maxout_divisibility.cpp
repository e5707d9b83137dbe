// Must not compile: maxout<3> over 10 features.
#include "fnn/layers/activations.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<9>, fnn::maxout<3>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<10>, fnn::maxout<3>, fnn::dense<2>>;
#endif
int main() { return net_t::out_features == 2 ? 0 : 1; }
