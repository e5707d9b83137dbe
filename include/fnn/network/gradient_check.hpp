#pragma once
// Gradient checking: analytic gradients (backprop) against central differences, for every
// parameter and the input. The five-point stencil
//   f'(w) ~ (f(w - 2h) - 8 f(w - h) + 8 f(w + h) - f(w + 2h)) / 12h
// has truncation error O(h^4), so with h = 1e-4 in double both truncation (~1e-16) and round-off
// (~1e-12) stay far below the 1e-6 relative tolerance. Meant for double-precision networks
// (fnn::basic_sequential<double, ...>); in float it is not a meaningful check.
//
// Relative error per element: |a - n| / max(|a|, |n|, floor). The floor keeps gradients that are
// zero up to round-off (e.g. through a saturated sigmoid) from being judged by noise.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "fnn/core/parameter.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/layers/penalty.hpp"
#include "fnn/network/sequential.hpp"

namespace fnn {

struct gradient_check_options final {
  double step = 1e-4;
  double tolerance = 1e-6;
  double floor = 1e-5;
  bool check_input = true;
};

struct gradient_check_result final {
  double max_relative_error = 0;
  std::string worst;  // "0.weight[12]" or "input[3]"
  double worst_analytic = 0, worst_numeric = 0;
  std::size_t checked = 0;
  bool passed = true;
};

// Five-point central-difference derivative of f at each element of x (x is restored afterwards).
template <class T>
std::vector<double> numerical_gradient(const std::function<double()>& f, std::span<T> x, double h = 1e-4) {
  std::vector<double> g(x.size());
  auto at = [&](std::size_t i, T saved, double offset) {
    x[i] = T(double(saved) + offset);
    return f();
  };
  for (std::size_t i = 0; i < x.size(); ++i) {
    const T saved = x[i];
    const double d = at(i, saved, -2 * h) - 8 * at(i, saved, -h) + 8 * at(i, saved, h) - at(i, saved, 2 * h);
    x[i] = saved;
    g[i] = d / (12 * h);
  }
  return g;
}

namespace detail {
inline void record(gradient_check_result& r, const gradient_check_options& o, const std::string& what,
                   std::span<const double> analytic, std::span<const double> numeric) {
  for (std::size_t i = 0; i < analytic.size(); ++i) {
    const double a = analytic[i], n = numeric[i];
    const double err = std::abs(a - n) / std::max({std::abs(a), std::abs(n), o.floor});
    ++r.checked;
    if (err > r.max_relative_error || !std::isfinite(err)) {
      r.max_relative_error = err;
      r.worst = what + "[" + std::to_string(i) + "]";
      r.worst_analytic = a;
      r.worst_numeric = n;
    }
  }
  r.passed = std::isfinite(r.max_relative_error) && r.max_relative_error <= o.tolerance;
}
}  // namespace detail

// Checks d(loss(net(x), target) + penalties)/d(parameters, x) in mode m (frozen parameters have no gradient
// and are skipped). Running statistics and the dropout engine are restored before every evaluation, so each
// one sees the same network.
template <class Net, class Loss, class Target, penalty::penalty_term... Penalties>
gradient_check_result check_gradients(Net& net, const_matrix_view<typename Net::value_type> x, const Target& target,
                                      const Loss& loss, mode m, gradient_check_options opt = {},
                                      const Penalties&... penalties) {
  using T = typename Net::value_type;
  const auto engine = net.engine();
  std::vector<std::vector<T>> saved_buffers;
  std::vector<std::int64_t> saved_counters;
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter) saved_counters.push_back(*b.counter);
    else saved_buffers.emplace_back(b.value.begin(), b.value.end());
  });
  auto restore = [&] {
    net.engine() = engine;
    std::size_t bi = 0, ci = 0;
    net.for_each_buffer([&](buffer_ref<T>& b) {
      if (b.counter) *b.counter = saved_counters[ci++];
      else std::copy(saved_buffers[bi].begin(), saved_buffers[bi].end(), b.value.begin()), ++bi;
    });
  };
  const auto t = detail::as_target(target);
  matrix<T> xin(x.rows(), x.cols());
  for (index_t i = 0; i < x.rows(); ++i) std::copy(x.row(i), x.row(i) + x.cols(), xin.data() + i * x.cols());
  matrix<T> d_out;
  auto objective = [&]() -> double {
    restore();
    const auto y = net.forward(xin.view(), m);
    double v = double(loss(y, t, matrix_view<T>{}));
    net.for_each_parameter([&](parameter_ref<T>& p) {
      if (decays_by_default(p.kind)) ((v += penalties.value(p)), ...);
    });
    return v;
  };

  // Analytic gradients.
  restore();
  const auto y = net.forward(xin.view(), m);
  d_out.resize(y.rows(), y.cols());
  loss(y, t, d_out.view());
  net.zero_grad();
  net.backward(d_out.view(), opt.check_input);
  net.for_each_parameter([&](parameter_ref<T>& p) {
    if (decays_by_default(p.kind) && !p.frozen) (penalties.add_gradient(p), ...);
  });
  std::vector<std::vector<double>> analytic;
  std::vector<std::string> names;
  net.for_each_parameter([&](parameter_ref<T>& p) {
    analytic.emplace_back(p.grad.begin(), p.grad.end());
    names.push_back(p.name());
  });
  std::vector<double> analytic_input;
  if (opt.check_input) {
    const auto gx = net.input_gradient();
    analytic_input.assign(gx.data(), gx.data() + gx.size());
  }

  gradient_check_result r;
  std::size_t k = 0;
  net.for_each_parameter([&](parameter_ref<T>& p) {  // a frozen parameter has no gradient to check
    if (!p.frozen) detail::record(r, opt, names[k], analytic[k], numerical_gradient<T>(objective, p.value, opt.step));
    ++k;
  });
  if (opt.check_input) {
    const auto numeric = numerical_gradient<T>(objective, xin.flat(), opt.step);
    detail::record(r, opt, "input", analytic_input, numeric);
  }
  restore();
  return r;
}

}  // namespace fnn
