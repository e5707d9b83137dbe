// Must not compile: dense<128, 10> after a layer that produces 256 features.
#include "fnn/layers/dense.hpp"
#include "fnn/network/sequential.hpp"
#ifdef FNN_TWIN
using net_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::dense<256, 10>>;
#else
using net_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::dense<128, 10>>;
#endif
int main() { return net_t::out_features == 10 ? 0 : 1; }
