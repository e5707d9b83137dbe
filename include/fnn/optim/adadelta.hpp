#pragma once
// AdaDelta (Zeiler 2012), as torch.optim.Adadelta (PyTorch 1.13):
//   d     = g + weight_decay * p
//   sq    = rho * sq + (1 - rho) * d * d                  square_avg
//   delta = sqrt(acc + eps) / sqrt(sq + eps) * d          eps inside both square roots
//   acc   = rho * acc + (1 - rho) * delta * delta         acc_delta
//   p     = p - lr * delta
// Defaults: lr 1.0, rho 0.9, eps 1e-6, weight_decay 0. Both state arrays start at zero. One loop per
// parameter reads and writes sq, acc and p once.
//
//   fnn::optim::adadelta opt{{.rho = 0.95f}};
#include <string_view>
#include <vector>

#include "fnn/optim/common.hpp"

namespace fnn::optim {

template <class T>
struct adadelta_options {
  T lr = T(1);
  T rho = T(0.9);
  T eps = T(1e-6);
  T weight_decay = T(0);
  bool maximize = false;
  T l1 = T(0);
  T max_grad_norm = T(0);
  T clip_value = T(0);
  decay_policy decay = decay_policy::all;
};

template <class T>
class basic_adadelta final : public optimizer_base<T, basic_adadelta<T>> {
 public:
  using options_type = adadelta_options<T>;

  basic_adadelta() : basic_adadelta(options_type{}) {}
  explicit basic_adadelta(const options_type& o) : opt_(o) {
    this->check_common();
    // torch accepts rho = 1 (no update ever); [0, 1] as torch does.
    if (!(o.rho >= T(0) && o.rho <= T(1))) throw value_error("rho must be in [0, 1], got " + std::to_string(o.rho));
    detail::check_non_negative(o.eps, "eps");
  }

  options_type& options() noexcept { return opt_; }
  const options_type& options() const noexcept { return opt_; }

  // torch's state names, so a checkpoint reads like torch's optimizer state_dict.
  std::vector<std::string_view> state_names() const { return {"square_avg", "acc_delta"}; }
  void init_state(std::size_t, std::span<T> s) const { std::fill(s.begin(), s.end(), T(0)); }

  void update(const slot<T>& s, std::span<buffer<T>> state, const grad_transform<T>& t) const {
    using namespace fnn::expr;
    const auto p = array(s.value);
    const auto sq = array(state[0]);
    const auto acc = array(state[1]);
    const T rho = opt_.rho, eps = opt_.eps, lr = s.lr;
    with_effective_grad(s, t, s.weight_decay, [&](const auto& d) {
      const auto dd = let<0>(d);
      const auto sq_new = let<1>(fma(rho, sq, (T(1) - rho) * (dd * dd)));
      const auto delta = let<2>(sqrt(acc + eps) / sqrt(sq_new + eps) * dd);
      assign(dd, sq_new, delta, into(sq, sq_new), into(acc, fma(rho, acc, (T(1) - rho) * (delta * delta))),
             into(p, p - lr * delta));
    });
  }

 private:
  options_type opt_;
};

using adadelta = basic_adadelta<float>;

}  // namespace fnn::optim
