#pragma once
// The networks of the export round trip: the main job's (fnn-train's net_t) and one with every other layer kind
// (group_norm included).
#include "fnn/fnn.hpp"

namespace fnn_deploy_test {

using main_net = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                                 fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
using mixed_net =
    fnn::sequential<fnn::input<11>, fnn::dense<12>::without_bias, fnn::batch_norm, fnn::prelu, fnn::dense<9>,
                    fnn::elu<0.7>, fnn::dropout<0.1>, fnn::layer_norm, fnn::leaky_relu<0.03>, fnn::dense<15>,
                    fnn::group_norm<5>, fnn::maxout<3>, fnn::batch_norm, fnn::swish, fnn::dense<7>, fnn::selu,
                    fnn::dense<4>, fnn::sigmoid>;

}  // namespace fnn_deploy_test
