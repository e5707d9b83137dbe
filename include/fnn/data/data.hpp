#pragma once
// All of fnn::data: standardization, PCA/ZCA whitening, seeded mini-batches, augmentation, validation splits.
#include "fnn/data/augment.hpp"
#include "fnn/data/batches.hpp"
#include "fnn/data/split.hpp"
#include "fnn/data/standardize.hpp"
#include "fnn/data/whiten.hpp"
