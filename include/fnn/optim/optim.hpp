#pragma once
// All of fnn::optim: optimizers (sgd, adagrad, adadelta, rmsprop, adam, adamw, lbfgs), schedules
// (closed-form ones and reduce_lr_on_plateau), clipping, EMA.
#include "fnn/optim/adadelta.hpp"
#include "fnn/optim/adagrad.hpp"
#include "fnn/optim/adam.hpp"
#include "fnn/optim/clip.hpp"
#include "fnn/optim/ema.hpp"
#include "fnn/optim/lbfgs.hpp"
#include "fnn/optim/plateau.hpp"
#include "fnn/optim/rmsprop.hpp"
#include "fnn/optim/schedule.hpp"
#include "fnn/optim/sgd.hpp"
