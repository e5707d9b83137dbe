#pragma once
// Exponential moving average of the weights (Polyak averaging), for evaluation with smoothed weights:
//   shadow = decay * shadow + (1 - decay) * p        (shadow = p at the first update)
// With `warmup`, the decay used at update n (1-based) is min(decay, (1 + n) / (10 + n)), as
// tf.train.ExponentialMovingAverage with num_updates.
//
//   fnn::optim::ema avg{{.decay = 0.999f}};
//   avg.update(net);            // after each opt.step(net)
//   avg.swap(net);              // evaluate with the averaged weights ...
//   avg.swap(net);              // ... and swap the training weights back
//   avg.copy_to(net);           // or keep the averaged weights for good
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/expr/assign.hpp"

namespace fnn::optim {

template <class T>
struct ema_options {
  T decay = T(0.999);
  bool warmup = false;
};

template <class T>
class basic_ema final {
 public:
  basic_ema() : basic_ema(ema_options<T>{}) {}
  explicit basic_ema(const ema_options<T>& o) : opt_(o) {
    if (!(o.decay >= T(0) && o.decay <= T(1)))
      throw value_error("ema: decay must be in [0, 1], got " + std::to_string(o.decay));
  }

  template <class Net>
  void update(Net& net) {
    const T d = current_decay();
    std::size_t i = 0;
    net.for_each_parameter([&](const auto& p) { update_one(i++, p.value, d); });
    finish(i);
  }
  void update(std::span<const T> params) {
    update_one(0, params, current_decay());
    finish(1);
  }

  // Exchanges the live and averaged weights in one pass (both old values read before either store).
  template <class Net>
  void swap(Net& net) {
    std::size_t i = 0;
    net.for_each_parameter([&](const auto& p) {
      const auto s = expr::array(shadow_at(i++, p.value.size()));
      const auto v = expr::array(p.value);
      expr::assign(expr::into(v, s), expr::into(s, v));
    });
  }
  template <class Net>
  void copy_to(Net& net) const {
    std::size_t i = 0;
    net.for_each_parameter([&](const auto& p) {
      const auto& s = shadow_at(i++, p.value.size());
      std::copy(s.begin(), s.end(), p.value.begin());
    });
  }

  std::int64_t num_updates() const noexcept { return updates_; }
  std::size_t size() const noexcept { return shadow_.size(); }  // parameter arrays averaged (0 before update())
  // Restores a saved average (a checkpoint's): one array per parameter array in for_each_parameter order, and
  // the update count (which the warm-up decay depends on). Validated before anything changes.
  void set_state(std::vector<std::vector<T>> shadow, std::int64_t num_updates) {
    if (num_updates < 0 || (num_updates == 0) != shadow.empty())
      throw value_error("ema: " + std::to_string(shadow.size()) + " averaged arrays and " +
                        std::to_string(num_updates) + " updates do not go together");
    std::vector<buffer<T>> s(shadow.size());
    for (std::size_t i = 0; i < shadow.size(); ++i) s[i].assign(shadow[i].begin(), shadow[i].end());
    shadow_ = std::move(s);
    updates_ = num_updates;
  }
  std::span<const T> shadow(std::size_t i) const { return shadow_.at(i); }
  // For checkpoints: f(index, "shadow", span<T>).
  template <class F>
  void for_each_state(F&& f) {
    for (std::size_t i = 0; i < shadow_.size(); ++i) f(static_cast<index_t>(i), std::string_view("shadow"), std::span<T>(shadow_[i]));
  }

 private:
  T current_decay() const noexcept {
    if (!opt_.warmup) return opt_.decay;
    const T n = static_cast<T>(updates_ + 1);
    return std::min(opt_.decay, (T(1) + n) / (T(10) + n));
  }
  void update_one(std::size_t i, std::span<const T> value, T d) {
    if (updates_ == 0) {
      if (i >= shadow_.size()) shadow_.resize(i + 1);
      shadow_[i].assign(value.begin(), value.end());
      return;
    }
    const auto s = expr::array(shadow_at(i, value.size()));
    expr::assign(s, expr::fma(d, s, (T(1) - d) * expr::array(value)));
  }
  void finish(std::size_t count) {
    if (count != shadow_.size())
      throw shape_error("ema: holds " + std::to_string(shadow_.size()) + " arrays, the network has " +
                        std::to_string(count));
    ++updates_;
  }
  buffer<T>& shadow_at(std::size_t i, std::size_t n) {
    check(i, n);
    return shadow_[i];
  }
  const buffer<T>& shadow_at(std::size_t i, std::size_t n) const {
    check(i, n);
    return shadow_[i];
  }
  void check(std::size_t i, std::size_t n) const {
    if (i >= shadow_.size())
      throw shape_error("ema: no average for parameter array " + std::to_string(i) + " (update() first)");
    if (shadow_[i].size() != n)
      throw shape_error("ema: parameter array " + std::to_string(i) + " has " + std::to_string(n) +
                        " elements, its average " + std::to_string(shadow_[i].size()));
  }

  ema_options<T> opt_;
  std::vector<buffer<T>> shadow_;
  std::int64_t updates_ = 0;
};

using ema = basic_ema<float>;

}  // namespace fnn::optim
