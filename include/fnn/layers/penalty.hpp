#pragma once
// L1 and L2 penalty terms added to the loss (the lecture notes' regularizers), applied to the
// parameters that decay by default (dense weights; not biases, norm parameters or PReLU slopes):
//   l2{lambda}: lambda/2 * sum w^2, gradient lambda * w  (the same as SGD weight_decay = lambda)
//   l1{lambda}: lambda * sum |w|,    subgradient lambda * sign(w), 0 at w = 0
// A network's train_step takes any number of them after the optimizer.
#include <cmath>

#include "fnn/core/parameter.hpp"

namespace fnn::penalty {

struct l2 final {
  double lambda = 0;
  template <class T>
  double value(const parameter_ref<T>& p) const {
    double s = 0;
    for (T w : p.value) s += double(w) * double(w);
    return 0.5 * lambda * s;
  }
  template <class T>
  void add_gradient(parameter_ref<T>& p) const {
    for (std::size_t i = 0; i < p.value.size(); ++i) p.grad[i] += T(lambda) * p.value[i];
  }
};

struct l1 final {
  double lambda = 0;
  template <class T>
  double value(const parameter_ref<T>& p) const {
    double s = 0;
    for (T w : p.value) s += std::abs(double(w));
    return lambda * s;
  }
  template <class T>
  void add_gradient(parameter_ref<T>& p) const {
    for (std::size_t i = 0; i < p.value.size(); ++i) {
      const T w = p.value[i];
      p.grad[i] += w > T(0) ? T(lambda) : (w < T(0) ? T(-lambda) : T(0));
    }
  }
};

template <class P>
concept penalty_term = requires(const P& p, parameter_ref<float>& r) {
  { p.value(r) } -> std::convertible_to<double>;
  p.add_gradient(r);
};

}  // namespace fnn::penalty
