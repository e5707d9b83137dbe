#pragma once
// What every layer shares. A layer is declared by a *spec* (what users write: fnn::dense<256>,
// fnn::gelu, ...) which the network binds to a concrete implementation once the input width, the
// scalar type and the layer's position are known:
//
//   typename Spec::template bind<T, LayerIndex, InFeatures, InitHint>
//
// A bound layer has in_features/out_features, forward(x, y, mode, rng), backward(x, y, dy, dx, mode)
// and visits its parameters/buffers. forward/backward here are the reference (plain loop) versions
// that fused kernels are tested against. Gradients accumulate (as in PyTorch) until zero_grad.
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string_view>

#include "fnn/core/config.hpp"
#include "fnn/core/parameter.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn {

// The random engine a network hands its layers (dropout masks, initial weights).
using random_engine = std::mt19937_64;

// What a layer is, for the network's bookkeeping (the fusion plan and default initializers use it).
enum class layer_role { dense, normalization, activation, regularization, pooling };

template <class S>
concept layer_spec = requires {
  typename S::fnn_layer_spec;
  { S::role } -> std::convertible_to<layer_role>;
};

// What is frozen in a layer (transfer learning; network::freeze and friends set it). A frozen parameter takes
// no gradient: backward skips its product or reduction, and optimizers skip it (torch's requires_grad_(False)).
// A frozen layer freezes all its parameters and, for batch_norm, its running statistics: train mode then
// normalizes with them and leaves them alone, as a torch BatchNorm1d put in eval() inside a training model.
struct freeze_state {
  std::uint8_t parameters = 0;  // bit k: the layer's k-th parameter in for_each_parameter order
  bool layer = false;

  constexpr bool parameter(unsigned k) const noexcept { return layer || ((parameters >> k) & 1u) != 0; }
  constexpr bool statistics() const noexcept { return layer; }
};

// Every layer holds its freeze_state; a layer with parameters consults it in backward.
class freezable {
 public:
  freeze_state& freezing() noexcept { return frozen_; }
  const freeze_state& freezing() const noexcept { return frozen_; }

 protected:
  freeze_state frozen_;
};

// Base of layers without trainable parameters or buffers.
struct stateless_layer : freezable {
  template <class F>
  void for_each_parameter(index_t, F&&) {}
  template <class F>
  void for_each_buffer(index_t, F&&) {}
  template <class Rng>
  void initialize(Rng&) {}
};

// Visits the per-feature affine of a normalization layer as "<module>.weight" (gamma) and
// "<module>.bias" (beta), the names and kinds torch and the optimizers' decay policy expect.
template <class T, class F>
void visit_norm_affine(index_t module, std::span<T> gamma, std::span<T> gamma_grad, std::span<T> beta,
                       std::span<T> beta_grad, const freeze_state& frozen, F&& f) {
  const std::array<index_t, 2> shape{index_t(gamma.size()), 1};
  parameter_ref<T> g{module, "weight", parameter_kind::norm_scale, gamma, gamma_grad, shape, 1, frozen.parameter(0)};
  f(g);
  parameter_ref<T> b{module, "bias", parameter_kind::norm_shift, beta, beta_grad, shape, 1, frozen.parameter(1)};
  f(b);
}

namespace detail {
// A constexpr square root (std::sqrt is not constexpr in C++20) for gains known at compile time.
constexpr double constexpr_sqrt(double x) {
  double r = x > 1 ? x : 1.0;
  for (int i = 0; i < 64; ++i) r = 0.5 * (r + x / r);
  return r;
}
}  // namespace detail

}  // namespace fnn
