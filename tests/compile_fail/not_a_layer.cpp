// Must not compile: an arbitrary type in the layer list.
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
struct my_type {};
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<8>, my_type, fnn::dense<2>>;
#endif
int main() { return net_t::out_features == 2 ? 0 : 1; }
