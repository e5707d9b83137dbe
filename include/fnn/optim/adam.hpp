#pragma once
// Adam and AdamW, as torch.optim.Adam / torch.optim.AdamW (PyTorch 1.13), step t = 1, 2, ...:
//   Adam:  d = g + weight_decay * p   (L2 through the gradient)
//   AdamW: d = g;  p = p * (1 - lr * weight_decay)   (decoupled, applied before the update)
//   m   = beta1 * m + (1 - beta1) * d
//   v   = beta2 * v + (1 - beta2) * d * d
//   vhat = amsgrad ? (vmax = max(vmax, v)) : v
//   denom = sqrt(vhat) / sqrt(1 - beta2^t) + eps          eps is added after the bias correction
//   p   = p - (lr / (1 - beta1^t)) * m / denom
// (bias corrections are computed in double once per step, then rounded to T, as torch does in Python.)
// Defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, amsgrad false; weight_decay 0 (Adam), 1e-2 (AdamW).
// The whole step is one loop: m, v (vmax) and p are each read once and written once.
//
//   fnn::optim::adamw opt{{.lr = 1e-3f, .weight_decay = 1e-2f}};
#include <array>
#include <cmath>
#include <string_view>
#include <vector>

#include "fnn/optim/common.hpp"

namespace fnn::optim {

template <class T, bool Decoupled>
struct adam_options {
  T lr = T(1e-3);
  std::array<T, 2> betas{T(0.9), T(0.999)};
  T eps = T(1e-8);
  T weight_decay = Decoupled ? T(1e-2) : T(0);
  bool amsgrad = false;
  bool maximize = false;
  T l1 = T(0);
  T max_grad_norm = T(0);
  T clip_value = T(0);
  decay_policy decay = decay_policy::all;
};

template <class T, bool Decoupled>
class basic_adam final : public optimizer_base<T, basic_adam<T, Decoupled>> {
 public:
  using options_type = adam_options<T, Decoupled>;

  basic_adam() : basic_adam(options_type{}) {}
  explicit basic_adam(const options_type& o) : opt_(o) {
    this->check_common();
    detail::check_unit_interval(o.betas[0], "betas[0]");
    detail::check_unit_interval(o.betas[1], "betas[1]");
    detail::check_non_negative(o.eps, "eps");
  }

  options_type& options() noexcept { return opt_; }
  const options_type& options() const noexcept { return opt_; }

  std::vector<std::string_view> state_names() const {
    if (opt_.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
    return {"exp_avg", "exp_avg_sq"};
  }
  void init_state(std::size_t, std::span<T> s) const { std::fill(s.begin(), s.end(), T(0)); }

  void update(const slot<T>& s, std::span<buffer<T>> state, const grad_transform<T>& t) const {
    using namespace fnn::expr;
    const auto p = array(s.value);
    const auto m = array(state[0]);
    const auto v = array(state[1]);
    const T b1 = opt_.betas[0], b2 = opt_.betas[1], eps = opt_.eps;
    const double step = static_cast<double>(this->step_count());
    const double bc1 = 1.0 - std::pow(static_cast<double>(b1), step);
    const double bc2 = 1.0 - std::pow(static_cast<double>(b2), step);
    const T step_size = static_cast<T>(static_cast<double>(s.lr) / bc1);
    const T inv_bc2_sqrt = static_cast<T>(1.0 / std::sqrt(bc2));
    const T keep = Decoupled ? T(1) - s.lr * s.weight_decay : T(1);
    const T l2 = Decoupled ? T(0) : s.weight_decay;
    with_effective_grad(s, t, l2, [&](const auto& d) {
      const auto dd = let<0>(d);
      const auto m_new = let<1>(fma(b1, m, (T(1) - b1) * dd));
      const auto v_new = let<2>(fma(b2, v, (T(1) - b2) * (dd * dd)));
      if (opt_.amsgrad) {
        const auto vmax = array(state[2]);
        const auto vmax_new = let<3>(max(vmax, v_new));
        const auto denom = fma(sqrt(vmax_new), inv_bc2_sqrt, eps);
        assign(dd, m_new, v_new, vmax_new, into(m, m_new), into(v, v_new), into(vmax, vmax_new),
               into(p, p * keep - step_size * (m_new / denom)));
      } else {
        const auto denom = fma(sqrt(v_new), inv_bc2_sqrt, eps);
        assign(dd, m_new, v_new, into(m, m_new), into(v, v_new), into(p, p * keep - step_size * (m_new / denom)));
      }
    });
  }

 private:
  options_type opt_;
};

using adam = basic_adam<float, false>;
using adamw = basic_adam<float, true>;
template <class T>
using basic_adamw = basic_adam<T, true>;

}  // namespace fnn::optim
