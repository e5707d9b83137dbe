// Must not compile: group_norm<4> over 10 features.
#include "fnn/layers/dense.hpp"
#include "fnn/layers/group_norm.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<12>, fnn::group_norm<4>, fnn::dense<2>>;
#else
using net_t = fnn::sequential<fnn::input<4>, fnn::dense<10>, fnn::group_norm<4>, fnn::dense<2>>;
#endif
int main() { return net_t::out_features == 2 ? 0 : 1; }
