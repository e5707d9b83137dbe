#pragma once
// Learning-rate schedules: values you query, lr_at(t) for t = number of completed scheduler steps
// (torch's last_epoch), then opt.set_lr(sched.lr_at(t)). Each is torch.optim.lr_scheduler's closed form:
//   step_lr(lr0, step_size, gamma = 0.1)            lr0 * gamma^floor(t / step_size)          StepLR
//   multi_step_lr(lr0, {m1, m2, ...}, gamma = 0.1)  lr0 * gamma^(number of milestones <= t)   MultiStepLR
//   exponential_lr(lr0, gamma)                      lr0 * gamma^t                              ExponentialLR
//   inverse_time_lr(lr0, k)                         lr0 / (1 + k t)                  (LambdaLR with that lambda)
//   cosine_annealing_lr(lr0, t_max, eta_min = 0)    eta_min + (lr0 - eta_min)(1 + cos(pi t / t_max)) / 2
//       CosineAnnealingLR; torch steps a recursive form whose values equal this one (periodic past t_max)
//   cosine_warm_restarts_lr(lr0, t_0, t_mult = 1, eta_min = 0)   CosineAnnealingWarmRestarts (SGDR):
//       the cosine above over the current period t_i, with t_i = t_0 * t_mult^k after k restarts
//   linear_warmup(steps, start_factor, inner)       lr0 * (f + (1 - f) t / steps) for t < steps, then
//       inner.lr_at(t - steps); lr0 = inner.lr_at(0). Same as SequentialLR([LinearLR(f, total_iters=steps),
//       inner], milestones=[steps]).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <utility>
#include <vector>

#include "fnn/core/errors.hpp"

namespace fnn::optim {

namespace detail {
inline void check_schedule(bool ok, const std::string& what) {
  if (!ok) throw value_error(what);
}
inline void check_step(std::int64_t t) {
  if (t < 0) throw value_error("schedule queried at step " + std::to_string(t) + ", must be >= 0");
}
inline double cosine(double lr0, double eta_min, double t, double period) {
  return eta_min + (lr0 - eta_min) * (1.0 + std::cos(std::numbers::pi * t / period)) / 2.0;
}
}  // namespace detail

class step_lr final {
 public:
  step_lr(double lr0, std::int64_t step_size, double gamma = 0.1) : lr0_(lr0), step_size_(step_size), gamma_(gamma) {
    detail::check_schedule(lr0 >= 0, "step_lr: lr0 must be >= 0, got " + std::to_string(lr0));
    detail::check_schedule(step_size > 0, "step_lr: step_size must be > 0, got " + std::to_string(step_size));
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    return lr0_ * std::pow(gamma_, static_cast<double>(t / step_size_));
  }

 private:
  double lr0_;
  std::int64_t step_size_;
  double gamma_;
};

class multi_step_lr final {
 public:
  multi_step_lr(double lr0, std::vector<std::int64_t> milestones, double gamma = 0.1)
      : lr0_(lr0), milestones_(std::move(milestones)), gamma_(gamma) {
    detail::check_schedule(lr0 >= 0, "multi_step_lr: lr0 must be >= 0, got " + std::to_string(lr0));
    detail::check_schedule(std::is_sorted(milestones_.begin(), milestones_.end()),
                           "multi_step_lr: milestones must be increasing");
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
    return lr0_ * std::pow(gamma_, static_cast<double>(passed));
  }

 private:
  double lr0_;
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

class exponential_lr final {
 public:
  exponential_lr(double lr0, double gamma) : lr0_(lr0), gamma_(gamma) {
    detail::check_schedule(lr0 >= 0, "exponential_lr: lr0 must be >= 0, got " + std::to_string(lr0));
    detail::check_schedule(gamma > 0, "exponential_lr: gamma must be > 0, got " + std::to_string(gamma));
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    return lr0_ * std::pow(gamma_, static_cast<double>(t));
  }

 private:
  double lr0_;
  double gamma_;
};

class inverse_time_lr final {
 public:
  inverse_time_lr(double lr0, double k) : lr0_(lr0), k_(k) {
    detail::check_schedule(lr0 >= 0, "inverse_time_lr: lr0 must be >= 0, got " + std::to_string(lr0));
    detail::check_schedule(k >= 0, "inverse_time_lr: k must be >= 0, got " + std::to_string(k));
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    return lr0_ / (1.0 + k_ * static_cast<double>(t));
  }

 private:
  double lr0_;
  double k_;
};

class cosine_annealing_lr final {
 public:
  cosine_annealing_lr(double lr0, std::int64_t t_max, double eta_min = 0) : lr0_(lr0), t_max_(t_max), eta_min_(eta_min) {
    detail::check_schedule(lr0 >= 0, "cosine_annealing_lr: lr0 must be >= 0, got " + std::to_string(lr0));
    detail::check_schedule(t_max > 0, "cosine_annealing_lr: t_max must be > 0, got " + std::to_string(t_max));
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    return detail::cosine(lr0_, eta_min_, static_cast<double>(t), static_cast<double>(t_max_));
  }

 private:
  double lr0_;
  std::int64_t t_max_;
  double eta_min_;
};

class cosine_warm_restarts_lr final {
 public:
  cosine_warm_restarts_lr(double lr0, std::int64_t t_0, std::int64_t t_mult = 1, double eta_min = 0)
      : lr0_(lr0), t_0_(t_0), t_mult_(t_mult), eta_min_(eta_min) {
    detail::check_schedule(lr0 >= 0, "cosine_warm_restarts_lr: lr0 must be >= 0, got " + std::to_string(lr0));
    detail::check_schedule(t_0 > 0, "cosine_warm_restarts_lr: t_0 must be > 0, got " + std::to_string(t_0));
    detail::check_schedule(t_mult >= 1, "cosine_warm_restarts_lr: t_mult must be >= 1, got " + std::to_string(t_mult));
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    // Integer walk over the periods: exact where torch's log-based closed form can round.
    std::int64_t t_cur = t;
    std::int64_t t_i = t_0_;
    if (t_mult_ == 1) {
      t_cur = t % t_0_;
    } else {
      while (t_cur >= t_i) {
        t_cur -= t_i;
        t_i *= t_mult_;
      }
    }
    return detail::cosine(lr0_, eta_min_, static_cast<double>(t_cur), static_cast<double>(t_i));
  }

 private:
  double lr0_;
  std::int64_t t_0_;
  std::int64_t t_mult_;
  double eta_min_;
};

// Linear warm-up from start_factor * lr0 to lr0 over `steps`, then `inner` restarted at 0.
template <class Inner>
class linear_warmup final {
 public:
  linear_warmup(std::int64_t steps, double start_factor, Inner inner)
      : steps_(steps), start_factor_(start_factor), inner_(std::move(inner)) {
    detail::check_schedule(steps >= 0, "linear_warmup: steps must be >= 0, got " + std::to_string(steps));
    detail::check_schedule(start_factor > 0 && start_factor <= 1,
                           "linear_warmup: start_factor must be in (0, 1], got " + std::to_string(start_factor));
  }
  double lr_at(std::int64_t t) const {
    detail::check_step(t);
    if (t >= steps_) return inner_.lr_at(t - steps_);
    const double f = start_factor_ + (1.0 - start_factor_) * static_cast<double>(t) / static_cast<double>(steps_);
    return inner_.lr_at(0) * f;
  }

 private:
  std::int64_t steps_;
  double start_factor_;
  Inner inner_;
};

}  // namespace fnn::optim
