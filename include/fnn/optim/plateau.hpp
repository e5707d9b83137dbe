#pragma once
// Reduce the learning rate when a metric stops improving, as torch.optim.lr_scheduler.ReduceLROnPlateau
// (PyTorch 1.13). Unlike the closed-form schedules (schedule.hpp) it is driven by observations:
//
//   fnn::optim::reduce_lr_on_plateau plateau{{.patience = 3}};
//   for (epoch ...) { train...; plateau.step(validation_loss, opt); }   // sets opt's lr when it reduces
//
// After each observation v (torch's step(metrics)):
//   better = mode min: v < best * (1 - threshold)  (rel)   or v < best - threshold  (abs)
//            mode max: v > best * (1 + threshold)  (rel)   or v > best + threshold  (abs)
//   better ? (best = v, bad = 0) : ++bad
//   in cooldown (cooldown_left > 0): --cooldown_left, bad = 0
//   bad > patience: lr' = max(lr * factor, min_lr), taken only if lr - lr' > eps; cooldown_left = cooldown,
//                   bad = 0
// best starts at +inf (min) / -inf (max). A NaN metric is never better (it counts as a bad epoch).
// Defaults: mode min, factor 0.1, patience 10, threshold 1e-4 rel, cooldown 0, min_lr 0, eps 1e-8.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "fnn/core/errors.hpp"

namespace fnn::optim {

enum class plateau_mode { min, max };
enum class plateau_threshold { rel, abs };

struct reduce_lr_on_plateau_options {
  plateau_mode mode = plateau_mode::min;
  double factor = 0.1;
  std::int64_t patience = 10;
  double threshold = 1e-4;
  plateau_threshold threshold_mode = plateau_threshold::rel;
  std::int64_t cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
};

// Everything a resume needs besides the options (torch's state_dict of the scheduler).
struct plateau_state {
  double best = 0;
  std::int64_t num_bad_epochs = 0;
  std::int64_t cooldown_counter = 0;
  std::int64_t last_epoch = 0;
};

class reduce_lr_on_plateau final {
 public:
  using options_type = reduce_lr_on_plateau_options;

  reduce_lr_on_plateau() : reduce_lr_on_plateau(options_type{}) {}
  explicit reduce_lr_on_plateau(const options_type& o) : opt_(o) {
    check(o.factor >= 0 && o.factor < 1, "factor must be in [0, 1) (a reduction), got " + std::to_string(o.factor));
    check(o.patience >= 0, "patience must be >= 0, got " + std::to_string(o.patience));
    check(o.threshold >= 0, "threshold must be >= 0, got " + std::to_string(o.threshold));
    check(o.cooldown >= 0, "cooldown must be >= 0, got " + std::to_string(o.cooldown));
    check(o.min_lr >= 0, "min_lr must be >= 0, got " + std::to_string(o.min_lr));
    check(o.eps >= 0, "eps must be >= 0, got " + std::to_string(o.eps));
    state_.best = worst();
  }

  const options_type& options() const noexcept { return opt_; }

  // One observation with the current rate `lr`; returns the rate to use from now on.
  double step(double metric, double lr) {
    ++state_.last_epoch;
    if (is_better(metric)) {
      state_.best = metric;
      state_.num_bad_epochs = 0;
    } else {
      ++state_.num_bad_epochs;
    }
    if (state_.cooldown_counter > 0) {
      --state_.cooldown_counter;
      state_.num_bad_epochs = 0;
    }
    if (state_.num_bad_epochs > opt_.patience) {
      const double reduced = std::max(lr * opt_.factor, opt_.min_lr);
      if (lr - reduced > opt_.eps) lr = reduced;
      state_.cooldown_counter = opt_.cooldown;
      state_.num_bad_epochs = 0;
    }
    return lr;
  }

  // One observation that reads and, when it reduces, sets the optimizer's rate (anything with lr()/set_lr()).
  // Returns whether the rate changed.
  template <class Optimizer>
  requires requires(Optimizer& o) { o.set_lr(o.lr()); }
  bool step(double metric, Optimizer& opt) {
    using lr_type = decltype(opt.lr());
    const double before = static_cast<double>(opt.lr());
    const double after = step(metric, before);
    if (after == before) return false;
    opt.set_lr(static_cast<lr_type>(after));
    return true;
  }

  bool in_cooldown() const noexcept { return state_.cooldown_counter > 0; }
  const plateau_state& state() const noexcept { return state_; }
  void set_state(const plateau_state& s) {
    check(s.num_bad_epochs >= 0 && s.cooldown_counter >= 0 && s.last_epoch >= 0, "plateau state counters must be >= 0");
    state_ = s;
  }

 private:
  static void check(bool ok, const std::string& what) {
    if (!ok) throw value_error("reduce_lr_on_plateau: " + what);
  }
  double worst() const noexcept {
    const double inf = std::numeric_limits<double>::infinity();
    return opt_.mode == plateau_mode::min ? inf : -inf;
  }
  bool is_better(double v) const noexcept {
    const double b = state_.best, th = opt_.threshold;
    const bool rel = opt_.threshold_mode == plateau_threshold::rel;
    if (opt_.mode == plateau_mode::min) return rel ? v < b * (1.0 - th) : v < b - th;
    return rel ? v > b * (th + 1.0) : v > b + th;
  }

  options_type opt_;
  plateau_state state_;
};

}  // namespace fnn::optim
