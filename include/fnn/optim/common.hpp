#pragma once
// What every optimizer shares: walking a network's parameters, per-parameter options (decay policy,
// per-name overrides), gradient clipping folded into the update loop, state storage and the step
// counter. An optimizer only writes `update(slot, state, grad)`: its math over expr/.
//
// Order of gradient processing (as a PyTorch loop that clips, then steps):
//   g1 = clamp(g, -clip_value, clip_value)              clip_grad_value_   (if clip_value > 0)
//   g2 = g1 * min(1, max_grad_norm / (||g1|| + 1e-6))   clip_grad_norm_    (if max_grad_norm > 0; the norm is
//                                                       over ALL parameters, computed in a first pass)
//   d  = (maximize ? -g2 : g2) + weight_decay * p + l1 * sign(p)          (L2 is skipped by AdamW, which
//                                                                          decays p directly)
// The gradient arrays themselves are never written (torch's clip_grad_* modify them in place; use
// optim/clip.hpp for that). NaN propagates as in torch.optim: a NaN gradient gives a NaN weight (the clamp
// keeps it NaN), and a NaN global norm a NaN clip scale, so every weight.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "fnn/core/diagnostics.hpp"
#include "fnn/core/errors.hpp"
#include "fnn/core/parameter.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/expr/assign.hpp"

namespace fnn::optim {

// Which parameters weight decay (and L1) applies to. `weights_only` uses fnn::decays_by_default:
// no decay on biases, norm scales/shifts and activation parameters.
enum class decay_policy { all, weights_only };

// Per-parameter override, matched on parameter_ref::name() ("0.weight").
template <class T>
struct param_override {
  T lr_scale = T(1);         // multiplies the (scheduled) learning rate
  T weight_decay = T(-1);    // replaces weight_decay when >= 0
};

// What step() reports. grad_norm is the global L2 norm of the (value-clipped) gradients, computed
// only when max_grad_norm > 0 (otherwise 0); clip_scale is the factor that was folded into the update.
template <class T>
struct step_stats {
  T grad_norm = T(0);
  T clip_scale = T(1);
};

// One parameter array as an optimizer sees it, options resolved.
template <class T>
struct slot {
  std::span<T> value;
  std::span<const T> grad;
  T lr;             // learning rate for this parameter (lr * lr_scale)
  T weight_decay;   // 0 when the policy excludes it
  T l1;             // 0 when the policy excludes it
  bool frozen = false;  // parameter_ref::frozen: skipped (no update, no decay, not in the clipping norm)
};

// Gradient preprocessing shared by all update kernels.
template <class T>
struct grad_transform {
  T scale;  // +-clip scale (negative for maximize)
  T clip;   // +inf when clip_value is off
};

// Anything that walks its trainable arrays as fnn::parameter_ref (a network, a layer, a test double).
template <class Net>
concept parameterized = requires(Net& net) { net.for_each_parameter([](auto&) {}); };

namespace detail {

template <class T>
void check_non_negative(T v, const char* what) {
  if (!(v >= T(0))) throw value_error(std::string(what) + " must be >= 0, got " + std::to_string(v));
}
template <class T>
void check_unit_interval(T v, const char* what) {
  if (!(v >= T(0) && v < T(1))) throw value_error(std::string(what) + " must be in [0, 1), got " + std::to_string(v));
}

}  // namespace detail

// d = scale * clamp(g) + wd * p (+ l1 * sign(p)): calls f with the expression of the effective gradient.
// Two instantiations (with and without L1) keep the common case free of the sign computation.
template <class T, class F>
void with_effective_grad(const slot<T>& s, const grad_transform<T>& t, T l2, F&& f) {
  using namespace fnn::expr;
  const auto p = array(s.value);
  const auto g = array(s.grad);
  const auto scaled = clamp(g, -t.clip, t.clip) * t.scale;
  if (s.l1 != T(0)) f(fma(l2, p, scaled) + s.l1 * sign(p));
  else f(fma(l2, p, scaled));
}

// CRTP base. Derived provides:
//   options()                              its options struct (lr, weight_decay, l1, maximize,
//                                          max_grad_norm, clip_value, decay)
//   std::vector<std::string_view> state_names() const
//   void init_state(std::size_t k, std::span<T> s) const   initial value of state array k
//   void update(const slot<T>&, std::span<buffer<T>> state, const grad_transform<T>&)
template <class T, class Derived>
class optimizer_base {
 public:
  using value_type = T;

  T lr() const noexcept { return derived().options().lr; }
  // For schedules: opt.set_lr(sched.lr_at(t)).
  void set_lr(T lr) {
    detail::check_non_negative(lr, "lr");
    derived().options().lr = lr;
  }

  // Number of completed steps (torch's state["step"]); bias corrections and lr_decay read it.
  std::int64_t step_count() const noexcept { return step_; }
  void set_step_count(std::int64_t n) {
    if (n < 0) throw value_error("step count must be >= 0, got " + std::to_string(n));
    step_ = n;
  }

  // Overrides options for the parameter called `name` (parameter_ref::name(), or "<i>" for spans).
  void set_override(std::string name, param_override<T> o) {
    detail::check_non_negative(o.lr_scale, "lr_scale");
    for (auto& [n, v] : overrides_)
      if (n == name) {
        v = o;
        return;
      }
    overrides_.emplace_back(std::move(name), o);
  }

  // One update of every parameter the network exposes through for_each_parameter.
  template <parameterized Net>
  step_stats<T> step(Net& net) {
    slots_.clear();
    net.for_each_parameter([&](const auto& p) {
      using element = std::remove_const_t<typename decltype(p.value)::element_type>;
      static_assert(diagnostics::holds<typename diagnostics::the_optimizer_argument<Derived>::template has_element_type<
                        T>::template but_the_network_has<element>>);
      if constexpr (std::is_same_v<element, T>) {  // else: diagnosed above, and no second error
        if (p.value.size() != p.grad.size())
          throw shape_error("parameter " + p.name() + " has " + std::to_string(p.value.size()) + " values but " +
                            std::to_string(p.grad.size()) + " gradients");
        add_slot(p.value, p.grad, p.kind, [&] { return p.name(); });
        slots_.back().frozen = p.frozen;
      }
    });
    return run();
  }

  // One update of a single array (state index 0), outside any network.
  step_stats<T> step(std::span<T> params, std::span<const T> grads) {
    if (params.size() != grads.size())
      throw shape_error("step over " + std::to_string(params.size()) + " parameters with " +
                        std::to_string(grads.size()) + " gradients");
    slots_.clear();
    add_slot(params, grads, parameter_kind::weight, [] { return std::string("0"); });
    return run();
  }

  // One update of several arrays (state index = position in the list), named "0", "1", ...
  step_stats<T> step(std::span<const std::span<T>> params, std::span<const std::span<const T>> grads) {
    if (params.size() != grads.size())
      throw shape_error("step over " + std::to_string(params.size()) + " parameter arrays with " +
                        std::to_string(grads.size()) + " gradient arrays");
    slots_.clear();
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (params[i].size() != grads[i].size())
        throw shape_error("parameter array " + std::to_string(i) + " has " + std::to_string(params[i].size()) +
                          " values but " + std::to_string(grads[i].size()) + " gradients");
      add_slot(params[i], grads[i], parameter_kind::weight, [i] { return std::to_string(i); });
    }
    return run();
  }

  // Allocates the state for the network's parameters without stepping (to load a checkpoint into it).
  template <parameterized Net>
  void prepare(Net& net) {
    std::vector<std::size_t> sizes;
    net.for_each_parameter([&](const auto& p) { sizes.push_back(p.value.size()); });
    prepare(sizes);
  }
  void prepare(std::span<const std::size_t> sizes) {
    const auto names = derived().state_names();
    state_.clear();
    state_.reserve(sizes.size() * names.size());
    for (std::size_t s : sizes)
      for (std::size_t k = 0; k < names.size(); ++k) {
        state_.emplace_back(s);
        derived().init_state(k, state_.back());
      }
    sizes_.assign(sizes.begin(), sizes.end());
  }

  // Walks the state for checkpoints: f(index_t parameter_index, std::string_view name, std::span<T>).
  // Spans are writable, so a loader can prepare() and then fill them. The step count is step_count().
  template <class F>
  void for_each_state(F&& f) {
    const auto names = derived().state_names();
    for (std::size_t i = 0; i < sizes_.size(); ++i)
      for (std::size_t k = 0; k < names.size(); ++k)
        f(static_cast<index_t>(i), names[k], std::span<T>(state_[i * names.size() + k]));
  }

  // Copies one saved state array back (after prepare()).
  void load_state(index_t parameter_index, std::string_view name, std::span<const T> values) {
    bool found = false;
    for_each_state([&](index_t i, std::string_view n, std::span<T> s) {
      if (i != parameter_index || n != name) return;
      if (s.size() != values.size())
        throw shape_error("state " + std::string(name) + " of parameter " + std::to_string(i) + " has " +
                          std::to_string(s.size()) + " elements, the saved one " + std::to_string(values.size()));
      std::copy(values.begin(), values.end(), s.begin());
      found = true;
    });
    if (!found)
      throw value_error("no state " + std::string(name) + " for parameter " + std::to_string(parameter_index) +
                        " (call prepare() first)");
  }

 protected:
  // Validates the options shared by all optimizers.
  void check_common() const {
    const auto& o = derived().options();
    detail::check_non_negative(o.lr, "lr");
    detail::check_non_negative(o.weight_decay, "weight_decay");
    detail::check_non_negative(o.l1, "l1");
    detail::check_non_negative(o.max_grad_norm, "max_grad_norm");
    detail::check_non_negative(o.clip_value, "clip_value");
  }

 private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }
  const Derived& derived() const noexcept { return static_cast<const Derived&>(*this); }

  template <class Name>
  void add_slot(std::span<T> value, std::span<const T> grad, parameter_kind kind, Name&& name) {
    const auto& o = derived().options();
    const bool decays = o.decay == decay_policy::all || decays_by_default(kind);
    slot<T> s{value, grad, o.lr, decays ? o.weight_decay : T(0), decays ? o.l1 : T(0)};
    if (!overrides_.empty()) {
      const std::string n = name();
      for (const auto& [key, ov] : overrides_)
        if (key == n) {
          s.lr *= ov.lr_scale;
          if (ov.weight_decay >= T(0)) s.weight_decay = ov.weight_decay;
        }
    }
    slots_.push_back(s);
  }

  void ensure_state() {
    if (sizes_.empty() && state_.empty()) {
      std::vector<std::size_t> sizes;
      for (const auto& s : slots_) sizes.push_back(s.value.size());
      prepare(sizes);
      return;
    }
    if (sizes_.size() != slots_.size())
      throw shape_error("optimizer state holds " + std::to_string(sizes_.size()) + " parameter arrays, the step got " +
                        std::to_string(slots_.size()));
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (sizes_[i] != slots_[i].value.size())
        throw shape_error("parameter array " + std::to_string(i) + " has " + std::to_string(slots_[i].value.size()) +
                          " elements, its optimizer state " + std::to_string(sizes_[i]));
  }

  step_stats<T> run() {
    const auto& o = derived().options();
    ensure_state();
    step_stats<T> stats;
    grad_transform<T> t{T(1), std::numeric_limits<T>::infinity()};
    if (o.clip_value > T(0)) t.clip = o.clip_value;
    if (o.max_grad_norm > T(0)) {
      // First pass: one reduction over all gradients (like clip_grad_norm_, per-array norms then the norm
      // of norms; accumulated in double across arrays).
      double total = 0;
      for (const auto& s : slots_) {
        if (s.frozen) continue;
        const auto g = expr::clamp(expr::array(s.grad), -t.clip, t.clip);
        total += static_cast<double>(expr::sum(g * g));
      }
      stats.grad_norm = static_cast<T>(std::sqrt(total));
      const T coef = o.max_grad_norm / (stats.grad_norm + T(1e-6));
      stats.clip_scale = std::min(coef, T(1));  // NaN when the norm is NaN: every update is then NaN, as in torch
      t.scale = stats.clip_scale;
    }
    if (o.maximize) t.scale = -t.scale;
    ++step_;
    const std::size_t per = derived().state_names().size();
    // A frozen parameter keeps its slot (and its state, so checkpoints keep their layout) but is not touched,
    // as torch.optim skips a parameter whose grad is None.
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].frozen) derived().update(slots_[i], std::span<buffer<T>>(state_.data() + i * per, per), t);
    return stats;
  }

  std::int64_t step_ = 0;
  std::vector<slot<T>> slots_;
  std::vector<buffer<T>> state_;  // parameter-major: state_[i * names + k]
  std::vector<std::size_t> sizes_;
  std::vector<std::pair<std::string, param_override<T>>> overrides_;
};

}  // namespace fnn::optim
