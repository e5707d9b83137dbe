#pragma once
// The Cortex-M0+ test's network: the main job's block at width 32.
#include "fnn/fnn.hpp"

using small_net = fnn::sequential<fnn::input<784>, fnn::dense<32>, fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
