#pragma once
// RMSProp, as torch.optim.RMSprop (PyTorch 1.13):
//   d   = g + weight_decay * p
//   sq  = alpha * sq + (1 - alpha) * d * d
//   centered:  ga = alpha * ga + (1 - alpha) * d;  avg = sqrt(sq - ga * ga) + eps
//   otherwise: avg = sqrt(sq) + eps                      eps is added after the square root
//   momentum > 0: b = momentum * b + d / avg;  p = p - lr * b
//   otherwise:    p = p - lr * d / avg
// Defaults: lr 1e-2, alpha 0.99, eps 1e-8, weight_decay 0, momentum 0, centered false. All state
// starts at zero. One loop per parameter updates sq, ga, b and p.
#include <string_view>
#include <vector>

#include "fnn/optim/common.hpp"

namespace fnn::optim {

template <class T>
struct rmsprop_options {
  T lr = T(1e-2);
  T alpha = T(0.99);
  T eps = T(1e-8);
  T weight_decay = T(0);
  T momentum = T(0);
  bool centered = false;
  bool maximize = false;
  T l1 = T(0);
  T max_grad_norm = T(0);
  T clip_value = T(0);
  decay_policy decay = decay_policy::all;
};

template <class T>
class basic_rmsprop final : public optimizer_base<T, basic_rmsprop<T>> {
 public:
  using options_type = rmsprop_options<T>;

  basic_rmsprop() : basic_rmsprop(options_type{}) {}
  explicit basic_rmsprop(const options_type& o) : opt_(o) {
    this->check_common();
    detail::check_non_negative(o.alpha, "alpha");
    detail::check_non_negative(o.eps, "eps");
    detail::check_non_negative(o.momentum, "momentum");
  }

  options_type& options() noexcept { return opt_; }
  const options_type& options() const noexcept { return opt_; }

  // Same names as torch's state dict; absent entries are not allocated.
  std::vector<std::string_view> state_names() const {
    std::vector<std::string_view> n{"square_avg"};
    if (opt_.momentum > T(0)) n.push_back("momentum_buffer");
    if (opt_.centered) n.push_back("grad_avg");
    return n;
  }
  void init_state(std::size_t, std::span<T> s) const { std::fill(s.begin(), s.end(), T(0)); }

  void update(const slot<T>& s, std::span<buffer<T>> state, const grad_transform<T>& t) const {
    with_effective_grad(s, t, s.weight_decay, [&](const auto& d) {
      if (opt_.centered) centered(s, state, d);
      else plain(s, state, d);
    });
  }

 private:
  // Bindings: 0 = d, 1 = new square_avg, [2 = new grad_avg], last = avg; each computed once per block.
  template <class D>
  void plain(const slot<T>& s, std::span<buffer<T>> state, const D& d) const {
    using namespace fnn::expr;
    const auto sq = array(state[0]);
    const auto dd = let<0>(d);
    const auto sq_new = let<1>(fma(opt_.alpha, sq, (T(1) - opt_.alpha) * (dd * dd)));
    const auto avg = let<2>(sqrt(sq_new) + opt_.eps);
    finish(s, state, dd, avg, dd, sq_new, avg, into(sq, sq_new));
  }
  template <class D>
  void centered(const slot<T>& s, std::span<buffer<T>> state, const D& d) const {
    using namespace fnn::expr;
    const auto sq = array(state[0]);
    const auto ga = array(state[opt_.momentum > T(0) ? 2 : 1]);
    const auto dd = let<0>(d);
    const auto sq_new = let<1>(fma(opt_.alpha, sq, (T(1) - opt_.alpha) * (dd * dd)));
    const auto ga_new = let<2>(fma(opt_.alpha, ga, (T(1) - opt_.alpha) * dd));
    const auto avg = let<3>(sqrt(sq_new - ga_new * ga_new) + opt_.eps);
    finish(s, state, dd, avg, dd, sq_new, ga_new, avg, into(sq, sq_new), into(ga, ga_new));
  }
  template <class D, class Avg, class... Steps>
  void finish(const slot<T>& s, std::span<buffer<T>> state, const D& d, const Avg& avg, const Steps&... steps) const {
    using namespace fnn::expr;
    const auto p = array(s.value);
    const T lr = s.lr;
    if (opt_.momentum > T(0)) {
      const auto b = array(state[1]);
      const auto b_new = fma(opt_.momentum, b, d / avg);
      assign(steps..., into(b, b_new), into(p, p - lr * b_new));
    } else {
      assign(steps..., into(p, p - lr * (d / avg)));
    }
  }

  options_type opt_;
};

using rmsprop = basic_rmsprop<float>;

}  // namespace fnn::optim
