#pragma once
// L-BFGS for full-batch problems, as torch.optim.LBFGS (PyTorch 1.13; Nocedal & Wright, Numerical
// Optimization, algorithms 7.4 (two-loop recursion), 3.5/3.6 (strong-Wolfe line search and zoom)).
//
//   fnn::optim::lbfgs opt{{.line_search_fn = fnn::optim::line_search::strong_wolfe}};
//   auto closure = [&] { return net.compute_gradients(x, labels, loss, fnn::mode::train); };
//   double loss0 = opt.step(net, closure);      // up to max_iter iterations; returns the first loss
//
// The closure re-evaluates the loss and the gradients at the current parameters (what torch's closure does
// with zero_grad + forward + backward) and returns the loss. One step(): evaluate; stop if max|g| <=
// tolerance_grad; then up to max_iter times: direction d from the two-loop recursion over the last
// history_size pairs (s = t d, y = g - g_prev, kept only if y.s > 1e-10; initial Hessian y.s / y.y);
// step length t = lr (the very first iteration: min(1, 1 / sum|g|) * lr); stop if g.d > -tolerance_change;
// move by t d, either once (re-evaluating unless it is the last iteration) or along a strong-Wolfe line
// search (c1 1e-4, c2 0.9, at most 25 evaluations, cubic interpolation); stop when max_iter or max_eval
// evaluations are reached, max|g| <= tolerance_grad, max|t d| <= tolerance_change or the loss changed less
// than tolerance_change. The history survives across step() calls, as torch's optimizer state does.
//
// Unlike the first-order optimizers it works on the flattened parameters with plain loops: each iteration
// is a few dot products and axpys over one vector, dominated by the closure's forward and backward.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/parameter.hpp"
#include "fnn/optim/common.hpp"

namespace fnn::optim {

enum class line_search { none, strong_wolfe };

template <class T>
struct lbfgs_options {
  T lr = T(1);
  std::int64_t max_iter = 20;
  std::int64_t max_eval = 0;  // 0: max_iter * 5 / 4, torch's default
  T tolerance_grad = T(1e-7);
  T tolerance_change = T(1e-9);
  std::int64_t history_size = 100;
  line_search line_search_fn = line_search::none;
};

template <class T>
class basic_lbfgs final {
 public:
  using value_type = T;
  using options_type = lbfgs_options<T>;

  basic_lbfgs() : basic_lbfgs(options_type{}) {}
  explicit basic_lbfgs(const options_type& o) : opt_(o) {
    detail::check_non_negative(o.lr, "lr");
    check(o.max_iter > 0, "max_iter must be > 0, got " + std::to_string(o.max_iter));
    check(o.max_eval >= 0, "max_eval must be >= 0 (0: max_iter * 5 / 4), got " + std::to_string(o.max_eval));
    detail::check_non_negative(o.tolerance_grad, "tolerance_grad");
    detail::check_non_negative(o.tolerance_change, "tolerance_change");
    check(o.history_size > 0, "history_size must be > 0, got " + std::to_string(o.history_size));
  }

  options_type& options() noexcept { return opt_; }
  const options_type& options() const noexcept { return opt_; }
  T lr() const noexcept { return opt_.lr; }
  void set_lr(T lr) {
    detail::check_non_negative(lr, "lr");
    opt_.lr = lr;
  }
  std::int64_t max_eval() const noexcept { return opt_.max_eval > 0 ? opt_.max_eval : opt_.max_iter * 5 / 4; }

  // Iterations over all step() calls (torch's state["n_iter"]) and closure evaluations (state["func_evals"]).
  std::int64_t iterations() const noexcept { return n_iter_; }
  std::int64_t evaluations() const noexcept { return func_evals_; }
  // Number of (s, y) pairs in the history.
  std::size_t history_length() const noexcept { return old_dirs_.size(); }

  // The checkpoint interface of io/checkpoint.hpp (save_training_state, load_training_state): the step count is
  // torch's n_iter; the state, per parameter array i (its slice of the flat vectors), is "d" and
  // "prev_flat_grad" [n_i], "old_dirs" and "old_stps" [history_size * n_i] (pair k at k * n_i, oldest first,
  // unused rows 0), and on array 0 "lbfgs_scalars" [5 + history_size]: history length, t, H_diag, func_evals,
  // whether a direction exists, then 1 / y.s of each pair. Fixed sizes, so a file's layout is known from the
  // options and the network alone. (Integers are exact in float up to 2^24.)
  std::int64_t step_count() const noexcept { return n_iter_; }
  void set_step_count(std::int64_t n) {
    check(n >= 0, "step count must be >= 0, got " + std::to_string(n));
    n_iter_ = n;
  }
  template <parameterized Net>
  void prepare(Net& net) {
    std::vector<std::size_t> sizes;
    net.for_each_parameter([&](const auto& p) { sizes.push_back(p.value.size()); });
    prepare(sizes);
  }
  void prepare(std::span<const std::size_t> sizes) {
    reset();
    sizes_.assign(sizes.begin(), sizes.end());
  }
  template <class F>
  void for_each_state(F&& f) {
    if (sizes_.empty()) return;
    const std::size_t h = std::size_t(opt_.history_size);
    std::size_t n = 0;
    for (std::size_t s : sizes_) n += s;
    const bool has_direction = !d_.empty();
    d_.resize(n, T(0));
    prev_flat_grad_.resize(n, T(0));
    vec dirs(h * n, T(0)), stps(h * n, T(0)), scalars(5 + h, T(0));
    for (std::size_t i = 0, off = 0; i < sizes_.size(); off += sizes_[i], ++i)
      for (std::size_t k = 0; k < old_dirs_.size(); ++k)
        for (std::size_t j = 0; j < sizes_[i]; ++j) {
          dirs[h * off + k * sizes_[i] + j] = old_dirs_[k][off + j];
          stps[h * off + k * sizes_[i] + j] = old_stps_[k][off + j];
        }
    scalars[0] = T(old_dirs_.size()), scalars[1] = T(t_), scalars[2] = T(h_diag_), scalars[3] = T(func_evals_);
    scalars[4] = T(has_direction ? 1 : 0);
    for (std::size_t k = 0; k < ro_.size(); ++k) scalars[5 + k] = T(ro_[k]);
    for (std::size_t i = 0, off = 0; i < sizes_.size(); off += sizes_[i], ++i) {
      const std::size_t ni = sizes_[i];
      f(index_t(i), std::string_view("d"), std::span<T>(d_.data() + off, ni));
      f(index_t(i), std::string_view("prev_flat_grad"), std::span<T>(prev_flat_grad_.data() + off, ni));
      f(index_t(i), std::string_view("old_dirs"), std::span<T>(dirs.data() + h * off, h * ni));
      f(index_t(i), std::string_view("old_stps"), std::span<T>(stps.data() + h * off, h * ni));
      if (i == 0) f(index_t(0), std::string_view("lbfgs_scalars"), std::span<T>(scalars));
    }
    // Back from the packed form: a loader has written into the spans.
    const double len = double(scalars[0]);
    check(len >= 0 && len <= double(h) && len == std::floor(len), "state lbfgs_scalars holds a history length of " +
                                                                      std::to_string(len) + ", history_size is " +
                                                                      std::to_string(h));
    old_dirs_.assign(std::size_t(len), vec(n));
    old_stps_.assign(std::size_t(len), vec(n));
    ro_.clear();
    for (std::size_t k = 0; k < std::size_t(len); ++k) ro_.push_back(double(scalars[5 + k]));
    for (std::size_t i = 0, off = 0; i < sizes_.size(); off += sizes_[i], ++i)
      for (std::size_t k = 0; k < old_dirs_.size(); ++k)
        for (std::size_t j = 0; j < sizes_[i]; ++j) {
          old_dirs_[k][off + j] = dirs[h * off + k * sizes_[i] + j];
          old_stps_[k][off + j] = stps[h * off + k * sizes_[i] + j];
        }
    t_ = double(scalars[1]), h_diag_ = double(scalars[2]), func_evals_ = std::int64_t(scalars[3]);
    if (scalars[4] == T(0)) d_.clear(), prev_flat_grad_.clear();
  }

  // Forgets the history (the next step starts with steepest descent), as a fresh torch optimizer.
  void reset() {
    old_dirs_.clear();
    old_stps_.clear();
    ro_.clear();
    d_.clear();
    prev_flat_grad_.clear();
    n_iter_ = 0;
    func_evals_ = 0;
  }

  // Minimizes over every parameter the network exposes; closure() re-evaluates loss and gradients.
  template <parameterized Net, class Closure>
  double step(Net& net, Closure&& closure) {
    std::vector<std::span<T>> values;
    std::vector<std::span<const T>> grads;
    net.for_each_parameter([&](const auto& p) {
      using element = std::remove_const_t<typename decltype(p.value)::element_type>;
      static_assert(std::is_same_v<element, T>, "fnn: the L-BFGS element type differs from the network's");
      values.push_back(p.value);
      grads.push_back(p.grad);
    });
    return run(values, grads, closure);
  }

  // Minimizes over one array whose gradient closure() writes into `grads`.
  template <class Closure>
  double step(std::span<T> params, std::span<const T> grads, Closure&& closure) {
    if (params.size() != grads.size())
      throw shape_error("L-BFGS step over " + std::to_string(params.size()) + " parameters with " +
                        std::to_string(grads.size()) + " gradients");
    std::vector<std::span<T>> values{params};
    std::vector<std::span<const T>> gs{grads};
    return run(values, gs, closure);
  }

 private:
  using vec = std::vector<T>;

  static void check(bool ok, const std::string& what) {
    if (!ok) throw value_error("lbfgs: " + what);
  }
  static double dot(const vec& a, const vec& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * double(b[i]);
    return s;
  }
  static double max_abs(const vec& a) {
    double m = 0;
    for (T v : a) m = std::max(m, std::abs(double(v)));
    return m;
  }
  static double sum_abs(const vec& a) {
    double s = 0;
    for (T v : a) s += std::abs(double(v));
    return s;
  }

  // The parameters as one flat vector, without copying them out of the network.
  struct flat_view {
    std::vector<std::span<T>>& values;
    std::vector<std::span<const T>>& grads;
    std::size_t size() const {
      std::size_t n = 0;
      for (const auto& v : values) n += v.size();
      return n;
    }
    void gather_grad(vec& out) const {
      out.clear();
      for (const auto& g : grads) out.insert(out.end(), g.begin(), g.end());
    }
    void gather_values(vec& out) const {
      out.clear();
      for (const auto& v : values) out.insert(out.end(), v.begin(), v.end());
    }
    void set_values(const vec& x) const {
      std::size_t k = 0;
      for (auto& v : values)
        for (T& e : v) e = x[k++];
    }
    void add(double t, const vec& d) const {  // p += t d
      const T tt = T(t);
      std::size_t k = 0;
      for (auto& v : values)
        for (T& e : v) e += tt * d[k++];
    }
  };

  template <class Closure>
  static double evaluate(Closure& closure) {
    return static_cast<double>(closure());
  }

  // Loss and gradient at x + t d; the parameters are left at x.
  template <class Closure>
  double directional(const flat_view& fv, Closure& closure, const vec& x, double t, const vec& d, vec& g) {
    fv.add(t, d);
    const double f = evaluate(closure);
    fv.gather_grad(g);
    fv.set_values(x);
    return f;
  }

  template <class Closure>
  double run(std::vector<std::span<T>>& values, std::vector<std::span<const T>>& grads, Closure& closure) {
    const flat_view fv{values, grads};
    const std::size_t n = fv.size();
    if (d_.empty()) {  // the checkpoint layout: one entry per parameter array
      sizes_.clear();
      for (const auto& v : values) sizes_.push_back(v.size());
    }
    if (!d_.empty() && d_.size() != n)
      throw shape_error("L-BFGS history is for " + std::to_string(d_.size()) + " parameters, the step has " +
                        std::to_string(n) + " (call reset())");
    const double tol_change = double(opt_.tolerance_change), tol_grad = double(opt_.tolerance_grad);
    const std::int64_t evals_limit = max_eval();

    const double orig_loss = evaluate(closure);
    double loss = orig_loss;
    std::int64_t current_evals = 1;
    ++func_evals_;
    vec flat_grad;
    fv.gather_grad(flat_grad);
    if (max_abs(flat_grad) <= tol_grad) return orig_loss;

    for (std::int64_t it = 1; it <= opt_.max_iter; ++it) {
      ++n_iter_;
      direction(flat_grad);
      prev_flat_grad_ = flat_grad;
      prev_loss_ = loss;
      t_ = double(T(n_iter_ == 1 ? std::min(1.0, 1.0 / sum_abs(flat_grad)) * double(opt_.lr) : double(opt_.lr)));
      const double gtd = dot(flat_grad, d_);
      if (gtd > -tol_change) break;  // not a descent direction

      std::int64_t ls_evals = 0;
      bool opt_cond = false;
      if (opt_.line_search_fn == line_search::strong_wolfe) {
        vec x_init;
        fv.gather_values(x_init);
        ls_evals = strong_wolfe(fv, closure, x_init, loss, flat_grad, gtd);  // updates t_, loss, flat_grad
        fv.add(t_, d_);
        opt_cond = max_abs(flat_grad) <= tol_grad;
      } else {
        fv.add(t_, d_);
        if (it != opt_.max_iter) {  // the last iteration's loss would be re-evaluated by the next step()
          loss = evaluate(closure);
          fv.gather_grad(flat_grad);
          opt_cond = max_abs(flat_grad) <= tol_grad;
          ls_evals = 1;
        }
      }
      current_evals += ls_evals;
      func_evals_ += ls_evals;

      if (it == opt_.max_iter || current_evals >= evals_limit || opt_cond) break;
      if (std::abs(t_) * max_abs(d_) <= tol_change) break;  // max|t d|: the step is too small
      if (std::abs(loss - prev_loss_) < tol_change) break;
    }
    return orig_loss;
  }

  // d = -H g by the two-loop recursion, after adding the pair of the last move to the history.
  void direction(const vec& g) {
    const std::size_t n = g.size();
    if (n_iter_ == 1 || d_.empty()) {  // (d_ empty otherwise only after set_step_count without a state)
      d_.assign(n, T(0));
      for (std::size_t i = 0; i < n; ++i) d_[i] = -g[i];
      old_dirs_.clear();
      old_stps_.clear();
      ro_.clear();
      h_diag_ = 1;
      return;
    }
    vec y(n), s(n);
    for (std::size_t i = 0; i < n; ++i) {
      y[i] = g[i] - prev_flat_grad_[i];
      s[i] = d_[i] * T(t_);
    }
    const double ys = dot(y, s);
    if (ys > 1e-10) {  // keep the pair only where the curvature condition holds
      if (old_dirs_.size() == std::size_t(opt_.history_size)) {
        old_dirs_.pop_front();
        old_stps_.pop_front();
        ro_.pop_front();
      }
      h_diag_ = double(T(ys / dot(y, y)));
      old_dirs_.push_back(std::move(y));
      old_stps_.push_back(std::move(s));
      ro_.push_back(double(T(1.0 / ys)));
    }
    const std::size_t m = old_dirs_.size();
    std::vector<double> al(m);
    vec q(n);
    for (std::size_t i = 0; i < n; ++i) q[i] = -g[i];
    for (std::size_t k = m; k-- > 0;) {
      al[k] = dot(old_stps_[k], q) * ro_[k];
      const T a = T(al[k]);
      for (std::size_t i = 0; i < n; ++i) q[i] -= a * old_dirs_[k][i];
    }
    for (std::size_t i = 0; i < n; ++i) d_[i] = q[i] * T(h_diag_);
    for (std::size_t k = 0; k < m; ++k) {
      const double be = dot(old_dirs_[k], d_) * ro_[k];
      const T c = T(al[k] - be);
      for (std::size_t i = 0; i < n; ++i) d_[i] += c * old_stps_[k][i];
    }
  }

  // Minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to [lo, hi]; the midpoint when the
  // cubic has no minimizer (Nocedal & Wright eq. 3.59).
  static double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, double lo,
                                  double hi) {
    const double d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
    const double d2_square = d1 * d1 - g1 * g2;
    if (d2_square >= 0) {
      const double d2 = std::sqrt(d2_square);
      const double pos = x1 <= x2 ? x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
                                  : x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2));
      return std::min(std::max(pos, lo), hi);
    }
    return (lo + hi) / 2;
  }
  static double cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2) {
    return cubic_interpolate(x1, f1, g1, x2, f2, g2, std::min(x1, x2), std::max(x1, x2));
  }

  // Strong-Wolfe line search along d_ from x (loss f, gradient g, slope gtd), starting at t_. Leaves the
  // accepted step in t_, its loss in f and its gradient in g; returns the number of evaluations.
  template <class Closure>
  std::int64_t strong_wolfe(const flat_view& fv, Closure& closure, const vec& x, double& f, vec& g, double gtd) {
    constexpr double c1 = 1e-4, c2 = 0.9, tolerance_change = 1e-9;  // torch's _strong_wolfe defaults
    constexpr std::int64_t max_ls = 25;
    const double d_norm = max_abs(d_);
    double t = t_;
    vec g_new;
    double f_new = directional(fv, closure, x, t, d_, g_new);
    std::int64_t evals = 1;
    double gtd_new = dot(g_new, d_);

    double t_prev = 0, f_prev = f, gtd_prev = gtd;
    vec g_prev = g;
    // The bracket: one point (done) or two.
    double bt[2] = {0, 0}, bf[2] = {0, 0}, bgtd[2] = {0, 0};
    vec bg[2];
    std::size_t points = 0;
    bool done = false;
    std::int64_t ls_iter = 0;
    while (ls_iter < max_ls) {
      const bool no_decrease = f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= f_prev);
      if (!no_decrease && std::abs(gtd_new) <= -c2 * gtd) {  // both Wolfe conditions: accept t
        bt[0] = t, bf[0] = f_new, bg[0] = g_new, points = 1, done = true;
        break;
      }
      if (no_decrease || gtd_new >= 0) {  // a minimizer lies between t_prev and t
        bt[0] = t_prev, bf[0] = f_prev, bg[0] = g_prev, bgtd[0] = gtd_prev;
        bt[1] = t, bf[1] = f_new, bg[1] = g_new, bgtd[1] = gtd_new;
        points = 2;
        break;
      }
      // Extrapolate: the cubic's minimizer, between a little past t and 10 t.
      const double min_step = t + 0.01 * (t - t_prev), max_step = t * 10;
      const double tmp = t;
      t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, min_step, max_step);
      t_prev = tmp, f_prev = f_new, g_prev = g_new, gtd_prev = gtd_new;
      f_new = directional(fv, closure, x, t, d_, g_new);
      ++evals;
      gtd_new = dot(g_new, d_);
      ++ls_iter;
    }
    if (ls_iter == max_ls) {
      bt[0] = 0, bf[0] = f, bg[0] = g, bgtd[0] = gtd;
      bt[1] = t, bf[1] = f_new, bg[1] = g_new, bgtd[1] = gtd_new;
      points = 2;
    }
    std::size_t lo = 0, hi = 1;
    if (points == 2 && !(bf[0] <= bf[1])) lo = 1, hi = 0;

    // Zoom: shrink the bracket until a point satisfies both Wolfe conditions.
    bool insufficient_progress = false;
    while (!done && ls_iter < max_ls) {
      if (std::abs(bt[1] - bt[0]) * d_norm < tolerance_change) break;
      t = cubic_interpolate(bt[0], bf[0], bgtd[0], bt[1], bf[1], bgtd[1]);
      const double b_max = std::max(bt[0], bt[1]), b_min = std::min(bt[0], bt[1]);
      const double eps = 0.1 * (b_max - b_min);
      if (std::min(b_max - t, t - b_min) < eps) {  // too close to an end: move 0.1 of the bracket inside
        if (insufficient_progress || t >= b_max || t <= b_min) {
          t = std::abs(t - b_max) < std::abs(t - b_min) ? b_max - eps : b_min + eps;
          insufficient_progress = false;
        } else {
          insufficient_progress = true;
        }
      } else {
        insufficient_progress = false;
      }
      f_new = directional(fv, closure, x, t, d_, g_new);
      ++evals;
      gtd_new = dot(g_new, d_);
      ++ls_iter;
      if (f_new > f + c1 * t * gtd || f_new >= bf[lo]) {
        bt[hi] = t, bf[hi] = f_new, bg[hi] = g_new, bgtd[hi] = gtd_new;
        if (bf[0] <= bf[1])
          lo = 0, hi = 1;
        else
          lo = 1, hi = 0;
      } else {
        if (std::abs(gtd_new) <= -c2 * gtd) {
          done = true;
        } else if (gtd_new * (bt[hi] - bt[lo]) >= 0) {
          bt[hi] = bt[lo], bf[hi] = bf[lo], bg[hi] = bg[lo], bgtd[hi] = bgtd[lo];
        }
        bt[lo] = t, bf[lo] = f_new, bg[lo] = g_new, bgtd[lo] = gtd_new;
      }
    }
    t_ = double(T(bt[lo]));
    f = bf[lo];
    g = std::move(bg[lo]);
    return evals;
  }

  options_type opt_;
  std::deque<vec> old_dirs_, old_stps_;  // y and s pairs, oldest first
  std::deque<double> ro_;                // 1 / y.s
  vec d_, prev_flat_grad_;
  std::vector<std::size_t> sizes_;  // of the parameter arrays, for the checkpoint layout
  double t_ = 0, h_diag_ = 1, prev_loss_ = 0;
  std::int64_t n_iter_ = 0, func_evals_ = 0;
};

using lbfgs = basic_lbfgs<float>;

}  // namespace fnn::optim
