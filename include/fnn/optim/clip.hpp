#pragma once
// Stand-alone gradient clipping that writes the gradients, as torch.nn.utils.clip_grad_norm_ /
// clip_grad_value_. Optimizers do the same without writing the gradients (max_grad_norm, clip_value
// options), folded into their update loop; use these when the clipped gradients are needed elsewhere.
//   double n = fnn::optim::clip_grad_norm(net, 1.0);   // returns the norm before clipping
//   fnn::optim::clip_grad_value(net, 0.5);
#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/expr/assign.hpp"

namespace fnn::optim {

// Global L2 norm over all gradient arrays (per-array sums of squares, combined in double).
template <class Net>
double global_grad_norm(Net& net) {
  double total = 0;
  net.for_each_parameter([&](const auto& p) {
    const auto g = expr::array(p.grad);
    total += static_cast<double>(expr::sum(g * g));
  });
  return std::sqrt(total);
}

// Scales all gradients by min(1, max_norm / (norm + 1e-6)); returns norm (before clipping). A NaN or infinite
// gradient gives a NaN or infinite norm: check the returned value.
template <class Net>
double clip_grad_norm(Net& net, double max_norm) {
  if (!(max_norm >= 0)) throw value_error("clip_grad_norm: max_norm must be >= 0, got " + std::to_string(max_norm));
  const double norm = global_grad_norm(net);
  // std::min(c, 1.0) returns c when c is NaN: a NaN norm makes every gradient NaN, as in torch, rather
  // than leaving the finite ones unclipped.
  const double coef = std::min(max_norm / (norm + 1e-6), 1.0);
  net.for_each_parameter([&](const auto& p) {
    using T = typename decltype(p.grad)::value_type;
    const auto g = expr::array(p.grad);
    expr::assign(g, g * static_cast<T>(coef));
  });
  return norm;
}

// Clamps every gradient element to [-clip, clip]; NaN stays NaN (torch.clamp).
template <class Net>
void clip_grad_value(Net& net, double clip) {
  if (!(clip >= 0)) throw value_error("clip_grad_value: clip must be >= 0, got " + std::to_string(clip));
  net.for_each_parameter([&](const auto& p) {
    using T = typename decltype(p.grad)::value_type;
    const auto g = expr::array(p.grad);
    expr::assign(g, expr::clamp(g, static_cast<T>(-clip), static_cast<T>(clip)));
  });
}

}  // namespace fnn::optim
