#pragma once
// Weight initializers. Each is a type so a network can name it (dense<256>::init<init::xavier_uniform>);
// fill() writes a [fan_out x fan_in] weight. Formulas as in the papers and torch.nn.init:
//   Xavier/Glorot (2010): normal std = gain*sqrt(2/(fan_in+fan_out)), uniform bound = gain*sqrt(6/(fan_in+fan_out))
//   He/Kaiming (2015):    normal std = gain/sqrt(fan_in),             uniform bound = gain*sqrt(3/fan_in)
//   LeCun (1998):         normal std = 1/sqrt(fan_in),                uniform bound = sqrt(3/fan_in)
//                         (the same variance 1/fan_in; torch: kaiming_normal_/kaiming_uniform_ with
//                         nonlinearity='linear')
// `gain` comes from the activation that follows (sqrt(2) for ReLU/GELU/Swish, sqrt(2/(1+a^2)) for leaky
// ReLU with slope a, 1 for tanh/sigmoid/SELU/none), as torch.nn.init.calculate_gain does for ReLU-likes.
#include <cmath>
#include <random>
#include <span>

#include "fnn/core/config.hpp"

namespace fnn::init {

struct zeros final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t, index_t, double, Rng&) {
    for (T& v : w) v = T(0);
  }
};

template <double Value>
struct constant final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t, index_t, double, Rng&) {
    for (T& v : w) v = T(Value);
  }
};

namespace detail {
template <class T, class Rng>
void fill_normal(std::span<T> w, double std, Rng& rng) {
  std::normal_distribution<double> d(0.0, std);
  for (T& v : w) v = static_cast<T>(d(rng));
}
template <class T, class Rng>
void fill_uniform(std::span<T> w, double bound, Rng& rng) {
  std::uniform_real_distribution<double> d(-bound, bound);
  for (T& v : w) v = static_cast<T>(d(rng));
}
}  // namespace detail

template <double Std>
struct normal final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t, index_t, double, Rng& rng) {
    detail::fill_normal(w, Std, rng);
  }
};

// U(-Bound, Bound).
template <double Bound>
struct uniform final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t, index_t, double, Rng& rng) {
    detail::fill_uniform(w, Bound, rng);
  }
};

struct xavier_normal final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t fan_out, double gain, Rng& rng) {
    detail::fill_normal(w, gain * std::sqrt(2.0 / double(fan_in + fan_out)), rng);
  }
};

struct xavier_uniform final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t fan_out, double gain, Rng& rng) {
    detail::fill_uniform(w, gain * std::sqrt(6.0 / double(fan_in + fan_out)), rng);
  }
};

struct he_normal final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t, double gain, Rng& rng) {
    detail::fill_normal(w, gain / std::sqrt(double(fan_in)), rng);
  }
};

struct he_uniform final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t, double gain, Rng& rng) {
    detail::fill_uniform(w, gain * std::sqrt(3.0 / double(fan_in)), rng);
  }
};

struct lecun_normal final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t, double, Rng& rng) {
    detail::fill_normal(w, 1.0 / std::sqrt(double(fan_in)), rng);
  }
};

struct lecun_uniform final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t, double, Rng& rng) {
    detail::fill_uniform(w, std::sqrt(3.0 / double(fan_in)), rng);
  }
};

// torch.nn.Linear's own default: kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
// Used for a dense layer that no activation follows (e.g. the output layer).
struct torch_linear_default final {
  template <class T, class Rng>
  static void fill(std::span<T> w, index_t fan_in, index_t, double, Rng& rng) {
    detail::fill_uniform(w, 1.0 / std::sqrt(double(fan_in)), rng);
  }
};

// Placeholder meaning "choose from the activation that follows" (the default of dense).
struct automatic final {};

// What an activation tells the dense layer before it: which initializer and which gain.
template <class Init, double Gain>
struct hint final {
  using type = Init;
  static constexpr double gain = Gain;
};

inline constexpr double sqrt2 = 1.4142135623730950488;
using relu_hint = hint<he_normal, sqrt2>;
using xavier_hint = hint<xavier_normal, 1.0>;
using lecun_hint = hint<lecun_normal, 1.0>;
using no_activation_hint = hint<torch_linear_default, 1.0>;

}  // namespace fnn::init
