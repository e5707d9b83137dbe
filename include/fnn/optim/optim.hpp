#pragma once
// All of fnn::optim: optimizers (sgd, adagrad, rmsprop, adam, adamw), schedules, clipping, EMA.
#include "fnn/optim/adagrad.hpp"
#include "fnn/optim/adam.hpp"
#include "fnn/optim/clip.hpp"
#include "fnn/optim/ema.hpp"
#include "fnn/optim/rmsprop.hpp"
#include "fnn/optim/schedule.hpp"
#include "fnn/optim/sgd.hpp"
