#pragma once
// Element-wise activations (PyTorch semantics). Each is a functor with the value f(x) and the
// derivative df(x, y) (y = f(x), which several derivatives reuse), plus the initializer hint it
// gives the dense layer before it. f and df are written once over V, a plain T (the reference
// loops, through <cmath>) or an xsimd batch (fused kernels' epilogues, through xsimd's math).
// The layer wrapper turns a functor into a network layer.
//
// NaN follows PyTorch: f(NaN) is NaN for every activation, and the backward at x = NaN is torch's: dy for relu
// and elu, slope * dy for leaky_relu, scale * dy for selu, NaN for the others. (torch's kernels select on x > 0
// or on x <= 0, and NaN fails either test; each select here uses torch's comparison, at the same cost.)
#include <cmath>
#include <cstddef>
#include <string_view>

#include "fnn/core/diagnostics.hpp"
#include "fnn/layers/init.hpp"
#include "fnn/layers/layer.hpp"
#include "fnn/simd/math.hpp"

namespace fnn {
namespace act {

struct sigmoid_fn {
  static constexpr std::string_view name = "sigmoid";
  using init_hint = init::xavier_hint;
  template <class T>
  static T f(const T& x) {
    // exp(-|x|) never overflows; the two branches are the two halves of the logistic function.
    const T e = simd::exp(-simd::abs(x));
    return simd::if_non_negative(x, T(1) / (T(1) + e), e / (T(1) + e));
  }
  template <class T>
  static T df(const T&, const T& y) {
    return y * (T(1) - y);
  }
};

struct tanh_fn {
  static constexpr std::string_view name = "tanh";
  using init_hint = init::xavier_hint;
  template <class T>
  static T f(const T& x) {
    return simd::tanh(x);
  }
  template <class T>
  static T df(const T&, const T& y) {
    return T(1) - y * y;
  }
};

// torch.relu is clamp_min(x, 0): NaN stays NaN, -0 stays -0. Its backward (threshold_backward) is a select,
// not a product: dy where x > 0 or x is NaN, 0 where x <= 0 even if dy is NaN; `grad` does the same.
struct relu_fn {
  static constexpr std::string_view name = "relu";
  using init_hint = init::relu_hint;
  template <class T>
  static T f(const T& x) {
    return simd::if_negative(x, T(0), x);
  }
  template <class T>
  static T df(const T& x, const T&) {
    return simd::if_non_positive(x, T(0), T(1));
  }
  template <class T>
  static T grad(const T& x, const T&, const T& dy) {
    return simd::if_non_positive(x, T(0), dy);
  }
};

template <double Slope>
struct leaky_relu_fn {
  static constexpr std::string_view name = "leaky_relu";
  template <std::size_t Index>
  using parameter_check = typename diagnostics::at_layer<Index>::template leaky_relu_slope<Slope>::must_be_non_negative;
  using init_hint = init::hint<init::he_normal, fnn::detail::constexpr_sqrt(2.0 / (1.0 + Slope * Slope))>;
  template <class T>
  static T f(const T& x) {
    return simd::if_positive(x, x, T(Slope) * x);
  }
  template <class T>
  static T df(const T& x, const T&) {
    return simd::if_positive(x, T(1), T(Slope));
  }
};

template <double Alpha>
struct elu_fn {
  static constexpr std::string_view name = "elu";
  template <std::size_t Index>
  using parameter_check = typename diagnostics::at_layer<Index>::template elu_alpha<Alpha>::must_be_positive;
  using init_hint = init::relu_hint;
  template <class T>
  static T f(const T& x) {
    return simd::if_positive(x, x, T(Alpha) * simd::expm1(x));
  }
  template <class T>
  static T df(const T& x, const T& y) {
    return simd::if_non_positive(x, y + T(Alpha), T(1));
  }
};

// Klambauer et al. (2017) constants, as in torch.nn.SELU.
struct selu_fn {
  static constexpr std::string_view name = "selu";
  static constexpr double alpha = 1.6732632423543772848170429916717;
  static constexpr double scale = 1.0507009873554804934193349852946;
  using init_hint = init::lecun_hint;
  template <class T>
  static T f(const T& x) {
    return simd::if_positive(x, T(scale) * x, T(scale * alpha) * simd::expm1(x));
  }
  template <class T>
  static T df(const T& x, const T& y) {
    return simd::if_non_positive(x, y + T(scale * alpha), T(scale));
  }
};

// Exact GELU: x * Phi(x), Phi the standard normal CDF (torch.nn.GELU()).
struct gelu_fn {
  static constexpr std::string_view name = "gelu";
  using init_hint = init::relu_hint;
  static constexpr double inv_sqrt2 = 0.70710678118654752440;
  static constexpr double inv_sqrt_2pi = 0.39894228040143267794;
  template <class T>
  static T f(const T& x) {
    return T(0.5) * x * simd::erfc(-x * T(inv_sqrt2));
  }
  template <class T>
  static T df(const T& x, const T&) {
    return T(0.5) * simd::erfc(-x * T(inv_sqrt2)) + x * T(inv_sqrt_2pi) * simd::exp(T(-0.5) * x * x);
  }
};

// tanh approximation: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (torch.nn.GELU(approximate="tanh")),
// evaluated as x * sigmoid(2u): the same function, since 1 + tanh(u) = 2 sigmoid(2u), without the
// cancellation of 1 + tanh(u) for negative x.
struct gelu_tanh_fn {
  static constexpr std::string_view name = "gelu_tanh";
  using init_hint = init::relu_hint;
  static constexpr double k = 0.79788456080286535588;  // sqrt(2/pi)
  static constexpr double c = 0.044715;
  template <class T>
  static T two_u(const T& x) {
    return T(2 * k) * (x + T(c) * x * x * x);
  }
  template <class T>
  static T f(const T& x) {
    return x * sigmoid_fn::f(two_u(x));
  }
  template <class T>
  static T df(const T& x, const T&) {
    const T t = two_u(x);
    const T s = sigmoid_fn::f(t), one_minus_s = sigmoid_fn::f(-t);
    // The polynomial factor sees |x| <= 1e4: beyond it s (1 - s) is exactly 0, and 3c x^2 would overflow
    // (above ~1.8e19 in float) into 0 * inf = NaN.
    const T xc = -simd::max(-simd::abs(x), T(-1e4));
    return s + x * s * one_minus_s * T(2 * k) * (T(1) + T(3 * c) * xc * xc);
  }
};

// Swish / SiLU: x * sigmoid(x).
struct swish_fn {
  static constexpr std::string_view name = "swish";
  using init_hint = init::relu_hint;
  template <class T>
  static T f(const T& x) {
    return x * sigmoid_fn::f(x);
  }
  template <class T>
  static T df(const T& x, const T&) {
    const T s = sigmoid_fn::f(x);
    return s * (T(1) + x * (T(1) - s));
  }
};

}  // namespace act

// A parameter-free element-wise activation as a layer.
template <class T, std::size_t Features, class Fn>
class activation_layer final : public stateless_layer {
 public:
  static constexpr std::size_t in_features = Features;
  static constexpr std::size_t out_features = Features;
  static constexpr std::string_view name = Fn::name;
  using function = Fn;

  void forward(const_matrix_view<T> x, matrix_view<T> y, mode, random_engine&) {
    for (index_t i = 0; i < x.rows(); ++i) {
      const T* xi = x.row(i);
      T* yi = y.row(i);
      for (std::size_t j = 0; j < Features; ++j) yi[j] = Fn::f(xi[j]);
    }
  }
  void backward(const_matrix_view<T> x, const_matrix_view<T> y, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    if (dx.rows() == 0) return;
    for (index_t i = 0; i < x.rows(); ++i)
      for (std::size_t j = 0; j < Features; ++j) {
        const auto c = index_t(j);
        dx(i, c) = simd::activation_gradient<Fn>(x(i, c), y(i, c), dy(i, c));
      }
  }
};

namespace detail {
// The diagnostic that checks an activation's parameter at its layer: Fn::parameter_check<Index>
// when Fn has a parameter (leaky_relu's slope, elu's alpha), else nothing.
template <class Fn, std::size_t Index>
struct parameter_check_of {
  using type = diagnostics::passes;
};
template <class Fn, std::size_t Index>
  requires requires { typename Fn::template parameter_check<Index>; }
struct parameter_check_of<Fn, Index> {
  using type = typename Fn::template parameter_check<Index>;
};
}  // namespace detail

template <class Fn>
struct activation_spec {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::activation;
  using function = Fn;
  using init_hint = typename Fn::init_hint;
  template <class T, std::size_t Index, std::size_t In, class>
  struct binder {
    static_assert(diagnostics::holds<typename detail::parameter_check_of<Fn, Index>::type>);
    using type = activation_layer<T, In, Fn>;
  };
  template <class T, std::size_t Index, std::size_t In, class Hint>
  using bind = typename binder<T, Index, In, Hint>::type;
};

struct sigmoid final : activation_spec<act::sigmoid_fn> {};
struct tanh final : activation_spec<act::tanh_fn> {};
struct relu final : activation_spec<act::relu_fn> {};
template <double Slope = 0.01>
struct leaky_relu final : activation_spec<act::leaky_relu_fn<Slope>> {};
template <double Alpha = 1.0>
struct elu final : activation_spec<act::elu_fn<Alpha>> {};
struct selu final : activation_spec<act::selu_fn> {};
struct gelu final : activation_spec<act::gelu_fn> {};
struct gelu_tanh final : activation_spec<act::gelu_tanh_fn> {};
struct swish final : activation_spec<act::swish_fn> {};
using silu = swish;

// Parametric ReLU (He et al. 2015): y = x for x > 0, a*x otherwise, with one learnable slope `a`
// shared by all features (torch.nn.PReLU() default, initial a = 0.25).
template <class T, std::size_t Features>
class prelu_layer final : public freezable {
 public:
  static constexpr std::size_t in_features = Features;
  static constexpr std::size_t out_features = Features;
  static constexpr std::string_view name = "prelu";

  prelu_layer() : slope_(1), slope_grad_(1) {}
  template <class Rng>
  void initialize(Rng&) {
    slope_[0] = T(0.25);
  }
  void forward(const_matrix_view<T> x, matrix_view<T> y, mode, random_engine&) {
    const T a = slope_[0];
    for (index_t i = 0; i < x.rows(); ++i)
      for (std::size_t j = 0; j < Features; ++j) {
        const T v = x(i, index_t(j));
        y(i, index_t(j)) = v > T(0) ? v : a * v;
      }
  }
  void backward(const_matrix_view<T> x, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    const T a = slope_[0];
    T da = T(0);
    for (index_t i = 0; i < x.rows(); ++i)
      for (std::size_t j = 0; j < Features; ++j) {
        const auto c = index_t(j);
        const T v = x(i, c);
        if (!(v > T(0))) da += dy(i, c) * v;  // a NaN v makes da NaN, as in torch
        if (dx.rows() > 0) dx(i, c) = v > T(0) ? dy(i, c) : a * dy(i, c);
      }
    if (!frozen_.parameter(0)) slope_grad_[0] += da;
  }
  template <class F>
  void for_each_parameter(index_t module, F&& f) {
    parameter_ref<T> p{module, "weight", parameter_kind::activation_parameter, slope_, slope_grad_, {1, 1}, 1,
                       frozen_.parameter(0)};
    f(p);
  }
  template <class F>
  void for_each_buffer(index_t, F&&) {}

 private:
  buffer<T> slope_, slope_grad_;
};

struct prelu final {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::activation;
  using init_hint = init::hint<init::he_normal, fnn::detail::constexpr_sqrt(2.0 / (1.0 + 0.25 * 0.25))>;
  template <class T, std::size_t, std::size_t In, class>
  using bind = prelu_layer<T, In>;
};

// Maxout (Goodfellow et al. 2013) over groups of `Pieces` consecutive features: out = in / Pieces.
// Put it after a dense layer with Pieces times the wanted width: dense<3 * 64>, maxout<3>.
// As torch.max over the group, NaN counts as the largest value: a group with a NaN gives NaN, and the
// gradient goes to its first NaN piece (otherwise to its first maximal piece).
template <class T, std::size_t In, std::size_t Pieces>
class maxout_layer final : public stateless_layer {
 public:
  static constexpr std::size_t in_features = In;
  static constexpr std::size_t out_features = In / Pieces;
  static constexpr std::string_view name = "maxout";

  void forward(const_matrix_view<T> x, matrix_view<T> y, mode, random_engine&) {
    for (index_t i = 0; i < x.rows(); ++i)
      for (std::size_t o = 0; o < out_features; ++o) {
        const T* g = x.row(i) + o * Pieces;
        T best = g[0];
        for (std::size_t p = 1; p < Pieces; ++p) best = g[p] > best || g[p] != g[p] ? g[p] : best;  // NaN sticks
        y(i, index_t(o)) = best;
      }
  }
  // The gradient goes to the first maximal piece of each group.
  void backward(const_matrix_view<T> x, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    if (dx.rows() == 0) return;
    for (index_t i = 0; i < x.rows(); ++i)
      for (std::size_t o = 0; o < out_features; ++o) {
        const T* g = x.row(i) + o * Pieces;
        const std::size_t arg = argmax(g);
        T* d = dx.row(i) + o * Pieces;
        for (std::size_t p = 0; p < Pieces; ++p) d[p] = p == arg ? dy(i, index_t(o)) : T(0);
      }
  }

 private:
  // First maximal piece, a NaN beating everything (torch.max's order); once g[arg] is NaN nothing replaces it.
  static std::size_t argmax(const T* g) {
    std::size_t arg = 0;
    for (std::size_t p = 1; p < Pieces; ++p)
      if (g[p] > g[arg] || (g[p] != g[p] && g[arg] == g[arg])) arg = p;
    return arg;
  }
};

template <std::size_t Pieces>
struct maxout final {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::activation;
  using init_hint = init::xavier_hint;  // Goodfellow et al. used uniform/Glorot-style init for maxout
  template <class T, std::size_t Index, std::size_t In, class>
  struct binder {
    using at = diagnostics::at_layer<Index>;
    using check = typename at::template maxout_pieces<Pieces>::template must_divide_in_features<In>;
    static_assert(diagnostics::holds<check>);
    using type = maxout_layer<T, In, (Pieces == 0 ? 1 : Pieces)>;
  };
  template <class T, std::size_t Index, std::size_t In, class Hint>
  using bind = typename binder<T, Index, In, Hint>::type;
};

}  // namespace fnn
