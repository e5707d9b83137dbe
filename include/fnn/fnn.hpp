#pragma once
// Everything a user of fnn needs. Include narrower headers to compile faster.
#include "fnn/layers/activations.hpp"
#include "fnn/layers/batch_norm.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/layers/dropout.hpp"
#include "fnn/layers/group_norm.hpp"
#include "fnn/layers/layer_norm.hpp"
#include "fnn/layers/losses.hpp"
#include "fnn/layers/penalty.hpp"
#include "fnn/network/gradient_check.hpp"
#include "fnn/network/sequential.hpp"
