#pragma once
// Fully connected layer, y = x W^T + b, with W stored [out, in] as in torch.nn.Linear.
//   fnn::dense<256>                         out-features 256, in-features inferred
//   fnn::dense<784, 256>                    in-features checked against the previous layer
//   fnn::dense<256>::without_bias           no bias (as before a batch norm, where it cancels)
//   fnn::dense<256>::init<fnn::init::xavier_uniform>   override the initializer chosen from the activation
#include <cstddef>
#include <string_view>

#include "fnn/core/diagnostics.hpp"
#include "fnn/kernels/fused_block.hpp"
#include "fnn/kernels/gemm.hpp"
#include "fnn/layers/init.hpp"
#include "fnn/layers/layer.hpp"

namespace fnn {

template <class T, std::size_t In, std::size_t Out, class Init, class InitHint, bool Bias>
class dense_layer final : public freezable {
 public:
  static constexpr std::size_t in_features = In;
  static constexpr std::size_t out_features = Out;
  static constexpr bool has_bias = Bias;
  static constexpr std::string_view name = "dense";
  using init_type = std::conditional_t<std::is_same_v<Init, init::automatic>, typename InitHint::type, Init>;
  static constexpr double init_gain = InitHint::gain;

  dense_layer() : weight_(In * Out), weight_grad_(In * Out), bias_(Bias ? Out : 0), bias_grad_(Bias ? Out : 0) {}

  template <class Rng>
  void initialize(Rng& rng) {
    init_type::fill(std::span<T>(weight_), index_t(In), index_t(Out), init_gain, rng);
    // Biases start at zero (the lecture-notes convention); torch's default draws them like the weights.
    if constexpr (std::is_same_v<init_type, init::torch_linear_default>)
      init::torch_linear_default::fill(std::span<T>(bias_), index_t(In), index_t(Out), 1.0, rng);
    else
      for (T& b : bias_) b = T(0);
  }

  // The products go through the fused stages' (here empty) epilogue type, so a network instantiates
  // one GEMM whichever path runs it: each instantiation costs about 2 s of compile time.
  void forward(const_matrix_view<T> x, matrix_view<T> y, mode, random_engine&) {
    using kernels::transpose;
    kernels::stage_epilogue<T> none;
    kernels::gemm(transpose::no, transpose::yes, x.rows(), index_t(Out), index_t(In), T(1), x.data(), x.ld(),
                  weight_.data(), index_t(In), T(0), y.data(), y.ld(), none);
    if constexpr (Bias)
      for (index_t i = 0; i < y.rows(); ++i)
        for (std::size_t o = 0; o < Out; ++o) y(i, index_t(o)) += bias_[o];
  }

  void backward(const_matrix_view<T> x, const_matrix_view<T>, const_matrix_view<T> dy, matrix_view<T> dx, mode) {
    using kernels::transpose;
    kernels::stage_epilogue<T> none;
    // dW += dy^T x ; db += column sums of dy ; dx = dy W (frozen parameters: no gradient)
    if (!frozen_.parameter(0))
      kernels::gemm(transpose::yes, transpose::no, index_t(Out), index_t(In), dy.rows(), T(1), dy.data(), dy.ld(),
                    x.data(), x.ld(), T(1), weight_grad_.data(), index_t(In), none);
    if constexpr (Bias)
      if (!frozen_.parameter(1))
        for (index_t i = 0; i < dy.rows(); ++i)
          for (std::size_t o = 0; o < Out; ++o) bias_grad_[o] += dy(i, index_t(o));
    if (dx.rows() > 0)
      kernels::gemm(transpose::no, transpose::no, dy.rows(), index_t(In), index_t(Out), T(1), dy.data(), dy.ld(),
                    weight_.data(), index_t(In), T(0), dx.data(), dx.ld(), none);
  }

  template <class F>
  void for_each_parameter(index_t module, F&& f) {
    parameter_ref<T> w{module, "weight", parameter_kind::weight, weight_, weight_grad_, {index_t(Out), index_t(In)}, 2,
                       frozen_.parameter(0)};
    f(w);
    if constexpr (Bias) {
      parameter_ref<T> b{module, "bias", parameter_kind::bias, bias_, bias_grad_, {index_t(Out), 1}, 1,
                         frozen_.parameter(1)};
      f(b);
    }
  }
  template <class F>
  void for_each_buffer(index_t, F&&) {}

  // Direct access for tests, folding and interop.
  std::span<T> weight() noexcept { return weight_; }
  std::span<T> bias() noexcept { return bias_; }
  std::span<const T> weight() const noexcept { return weight_; }
  std::span<const T> bias() const noexcept { return bias_; }
  std::span<T> weight_grad() noexcept { return weight_grad_; }
  std::span<T> bias_grad() noexcept { return bias_grad_; }

 private:
  buffer<T> weight_, weight_grad_, bias_, bias_grad_;
};

template <std::size_t In, std::size_t Out, class Init, bool Bias>
struct dense_spec {
  using fnn_layer_spec = void;
  static constexpr layer_role role = layer_role::dense;
  static constexpr std::size_t declared_in = In;  // 0: inferred
  static constexpr std::size_t out = Out;

  using without_bias = dense_spec<In, Out, Init, false>;
  template <class NewInit>
  using init = dense_spec<In, Out, NewInit, Bias>;

  template <class T, std::size_t Index, std::size_t InFeatures, class InitHint>
  struct binder {
    using at = diagnostics::at_layer<Index>;
    static_assert(diagnostics::holds<typename at::template dense_declares_out_features<Out>::which_must_be_positive>);
    static_assert(diagnostics::holds<typename at::template dense_declares_in_features<(
                      In == 0 ? InFeatures : In)>::template but_the_previous_layer_produces<InFeatures>>);
    using type = dense_layer<T, InFeatures, (Out == 0 ? 1 : Out), Init, InitHint, Bias>;
  };
  template <class T, std::size_t Index, std::size_t InFeatures, class InitHint>
  using bind = typename binder<T, Index, InFeatures, InitHint>::type;
};

namespace detail {
template <std::size_t... Dims>
struct dense_dims {
  static_assert(diagnostics::holds<typename diagnostics::dense_is_given_sizes<sizeof...(Dims)>::but_takes_one_or_two>);
  // A valid width, so that the wrong size count is the only error.
  static constexpr std::size_t in = 0, out = 1;
};
template <std::size_t Out>
struct dense_dims<Out> {
  static constexpr std::size_t in = 0, out = Out;
};
template <std::size_t In, std::size_t Out>
struct dense_dims<In, Out> {
  static constexpr std::size_t in = In, out = Out;
};
}  // namespace detail

template <std::size_t... Dims>
struct dense final : dense_spec<detail::dense_dims<Dims...>::in, detail::dense_dims<Dims...>::out, init::automatic, true> {};

// torch's name for the same layer.
template <std::size_t... Dims>
using linear = dense<Dims...>;

}  // namespace fnn
