// Must not compile: a deploy group norm of 10 features in 4 groups; the twin has 12.
#include "fnn/deploy/model.hpp"

namespace d = fnn::deploy;
#ifdef FNN_TWIN
using model_t = d::model<d::static_batch<1>, d::dense<4, 12>, d::group_norm<12, 4>, d::dense<12, 2>>;
#else
using model_t = d::model<d::static_batch<1>, d::dense<4, 10>, d::group_norm<10, 4>, d::dense<10, 2>>;
#endif
static_assert(model_t::layer_count == 3);

int main() {}
