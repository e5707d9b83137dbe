// Must not compile: dropout with p = 1 would drop everything.
#include "fnn/layers/dense.hpp"
#include "fnn/layers/dropout.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::dropout<0.5>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::dropout<1.0>, fnn::dense<2>>;
#endif
int main() { return net_t::out_features == 2 ? 0 : 1; }
