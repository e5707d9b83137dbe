// A deploy model whose layers do not chain (8 outputs into a layer that takes 7).
#include "fnn/deploy/model.hpp"

namespace d = fnn::deploy;
#ifdef FNN_TWIN
using model_t = d::model<d::static_batch<1>, d::dense<4, 8>, d::dense<8, 2>>;
#else
using model_t = d::model<d::static_batch<1>, d::dense<4, 8>, d::dense<7, 2>>;
#endif
static_assert(model_t::layer_count == 2);

int main() {}
