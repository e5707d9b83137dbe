#pragma once
// Stochastic gradient descent, as torch.optim.SGD (PyTorch 1.13):
//   d = g + weight_decay * p                                 (after clipping / maximize, see common.hpp)
//   if momentum != 0:
//     b = d                                   on the first step (torch clones d into the buffer)
//     b = momentum * b + (1 - dampening) * d  afterwards
//     d = nesterov ? d + momentum * b : b
//   p = p - lr * d
// Defaults as torch except lr, which torch requires: 1e-2 here. nesterov needs momentum > 0 and
// dampening == 0 (torch raises otherwise). One loop per parameter reads p, g (and b) once.
//
//   fnn::optim::sgd opt{{.lr = 0.1f, .momentum = 0.9f, .nesterov = true}};
//   opt.step(net);
#include <string_view>
#include <vector>

#include "fnn/optim/common.hpp"

namespace fnn::optim {

template <class T>
struct sgd_options {
  T lr = T(1e-2);
  T momentum = T(0);
  T dampening = T(0);
  T weight_decay = T(0);
  bool nesterov = false;
  bool maximize = false;
  T l1 = T(0);              // L1 penalty: adds l1 * sign(p) to the gradient
  T max_grad_norm = T(0);   // > 0: clip by global L2 norm (clip_grad_norm_)
  T clip_value = T(0);      // > 0: clamp each gradient to [-clip_value, clip_value] (clip_grad_value_)
  decay_policy decay = decay_policy::all;
};

template <class T>
class basic_sgd final : public optimizer_base<T, basic_sgd<T>> {
 public:
  using options_type = sgd_options<T>;

  basic_sgd() : basic_sgd(options_type{}) {}
  explicit basic_sgd(const options_type& o) : opt_(o) {
    this->check_common();
    detail::check_non_negative(o.momentum, "momentum");
    detail::check_non_negative(o.dampening, "dampening");
    if (o.nesterov && (o.momentum <= T(0) || o.dampening != T(0)))
      throw value_error("nesterov momentum requires momentum > 0 and dampening == 0, got momentum " +
                        std::to_string(o.momentum) + " and dampening " + std::to_string(o.dampening));
  }

  options_type& options() noexcept { return opt_; }
  const options_type& options() const noexcept { return opt_; }

  std::vector<std::string_view> state_names() const {
    if (opt_.momentum != T(0)) return {"momentum_buffer"};
    return {};
  }
  void init_state(std::size_t, std::span<T> s) const { std::fill(s.begin(), s.end(), T(0)); }

  void update(const slot<T>& s, std::span<buffer<T>> state, const grad_transform<T>& t) const {
    using namespace fnn::expr;
    const auto p = array(s.value);
    const T lr = s.lr;
    with_effective_grad(s, t, s.weight_decay, [&](const auto& d) {
      if (opt_.momentum == T(0)) {
        assign(p, p - lr * d);
        return;
      }
      const auto b = array(state[0]);
      const bool first = this->step_count() == 1;
      const T mu = first ? T(0) : opt_.momentum;
      const T keep = first ? T(1) : T(1) - opt_.dampening;
      const auto dd = let<0>(d);
      const auto b_new = let<1>(fma(mu, b, keep * dd));
      if (opt_.nesterov) assign(dd, b_new, into(b, b_new), into(p, p - lr * fma(opt_.momentum, b_new, dd)));
      else assign(dd, b_new, into(b, b_new), into(p, p - lr * b_new));
    });
  }

 private:
  options_type opt_;
};

using sgd = basic_sgd<float>;

}  // namespace fnn::optim
