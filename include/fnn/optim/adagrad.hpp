#pragma once
// AdaGrad, as torch.optim.Adagrad (PyTorch 1.13), step t = 1, 2, ...:
//   d   = g + weight_decay * p
//   clr = lr / (1 + (t - 1) * lr_decay)
//   sum = sum + d * d                          (sum starts at initial_accumulator_value)
//   p   = p - clr * d / (sqrt(sum) + eps)      eps is added after the square root
// Defaults: lr 1e-2, lr_decay 0, weight_decay 0, initial_accumulator_value 0, eps 1e-10.
#include <string_view>
#include <vector>

#include "fnn/optim/common.hpp"

namespace fnn::optim {

template <class T>
struct adagrad_options {
  T lr = T(1e-2);
  T lr_decay = T(0);
  T weight_decay = T(0);
  T initial_accumulator_value = T(0);
  T eps = T(1e-10);
  bool maximize = false;
  T l1 = T(0);
  T max_grad_norm = T(0);
  T clip_value = T(0);
  decay_policy decay = decay_policy::all;
};

template <class T>
class basic_adagrad final : public optimizer_base<T, basic_adagrad<T>> {
 public:
  using options_type = adagrad_options<T>;

  basic_adagrad() : basic_adagrad(options_type{}) {}
  explicit basic_adagrad(const options_type& o) : opt_(o) {
    this->check_common();
    detail::check_non_negative(o.lr_decay, "lr_decay");
    detail::check_non_negative(o.initial_accumulator_value, "initial_accumulator_value");
    detail::check_non_negative(o.eps, "eps");
  }

  options_type& options() noexcept { return opt_; }
  const options_type& options() const noexcept { return opt_; }

  std::vector<std::string_view> state_names() const { return {"sum"}; }
  void init_state(std::size_t, std::span<T> s) const {
    std::fill(s.begin(), s.end(), opt_.initial_accumulator_value);
  }

  void update(const slot<T>& s, std::span<buffer<T>> state, const grad_transform<T>& t) const {
    using namespace fnn::expr;
    const auto p = array(s.value);
    const auto acc = array(state[0]);
    const T clr = s.lr / (T(1) + static_cast<T>(this->step_count() - 1) * opt_.lr_decay);
    const T eps = opt_.eps;
    with_effective_grad(s, t, s.weight_decay, [&](const auto& d) {
      const auto dd = let<0>(d);
      const auto acc_new = let<1>(fma(dd, dd, acc));
      assign(dd, acc_new, into(acc, acc_new), into(p, p - clr * (dd / (sqrt(acc_new) + eps))));
    });
  }

 private:
  options_type opt_;
};

using adagrad = basic_adagrad<float>;

}  // namespace fnn::optim
