#pragma once
// Inverted dropout (torch.nn.Dropout(p)): in train mode each feature is zeroed with probability p and
// the survivors are scaled by 1/(1-p), so eval mode is the identity. Masks come from the network's
// seeded engine, so a run is reproducible.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fnn/core/diagnostics.hpp"
#include "fnn/layers/layer.hpp"

namespace fnn {

template <class T, std::size_t Features, double P>
class dropout_layer final : public stateless_layer {
 public:
  static constexpr std::size_t in_features = Features;
  static constexpr std::size_t out_features = Features;
  static constexpr std::string_view name = "dropout";
  static constexpr double probability = P;

  void forward(const_matrix_view<T> x, matrix_view<T> y, mode m, random_engine& rng) {
    const auto n = std::size_t(x.rows()) * Features;
    if (m == mode::eval || P == 0.0) {
      scale_.assign(n, T(1));
    } else {
      // 53 random bits compared with the keep probability: an unbiased Bernoulli(1 - p).
      const T keep_scale = T(1.0 / (1.0 - P));
      scale_.resize(n);
      for (auto& s : scale_) s = double(rng() >> 11) * 0x1.0p-53 < P ? T(0) : keep_scale;
    }
    for (index_t i = 0; i < x.rows(); ++i)
      for (std::size_t j = 0; j < Features; ++j)
        y(i, index_t(j)) = x(i, index_t(j)) * scale_[std::size_t(i) * Features + j];
  }
  void backward(const_matrix_view<T>, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    if (dx.rows() == 0) return;
    for (index_t i = 0; i < dy.rows(); ++i)
      for (std::size_t j = 0; j < Features; ++j)
        dx(i, index_t(j)) = dy(i, index_t(j)) * scale_[std::size_t(i) * Features + j];
  }

 private:
  buffer<T> scale_;  // 0 or 1/(1-p) per element of the last forward
};

template <double P>
struct dropout final {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::regularization;
  template <class T, std::size_t Index, std::size_t In, class>
  struct binder {
    using at = diagnostics::at_layer<Index>;
    static_assert(diagnostics::holds<typename at::template dropout_probability<P>::must_be_at_least_0_and_below_1>);
    using type = dropout_layer<T, In, P>;
  };
  template <class T, std::size_t Index, std::size_t In, class Hint>
  using bind = typename binder<T, Index, In, Hint>::type;
};

}  // namespace fnn
