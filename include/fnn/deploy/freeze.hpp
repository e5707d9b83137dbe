#pragma once
// Host side of deploy: the deploy model of a trained network's type, and freeze(net), which fills one from the
// network's current parameters. Dropout disappears; a dense layer takes the batch norm right after it (folded
// into W and b, deploy/fold.hpp) and the activation after that (applied in its loop); every other layer maps
// one to one. Includes network/ (so it is host-only); the model it returns needs only deploy/model.hpp.
//
//   using model_t = fnn::deploy::model_of<net_t>;          // static_batch<1>
//   std::unique_ptr<model_t> m = fnn::deploy::freeze(net);
//   m->predict(x, logits);
#include <cstddef>
#include <memory>
#include <tuple>
#include <type_traits>

#include "fnn/deploy/fold.hpp"
#include "fnn/deploy/model.hpp"
#include "fnn/layers/activations.hpp"
#include "fnn/layers/batch_norm.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/core/diagnostics.hpp"
#include "fnn/layers/dropout.hpp"
#include "fnn/layers/group_norm.hpp"
#include "fnn/layers/layer_norm.hpp"

namespace fnn::deploy {
namespace detail {

// The deploy activation of a core activation function.
template <class Fn>
struct activation_of;
template <>
struct activation_of<fnn::act::relu_fn> {
  using type = act::relu;
};
template <double S>
struct activation_of<fnn::act::leaky_relu_fn<S>> {
  using type = act::leaky_relu<S>;
};
template <double A>
struct activation_of<fnn::act::elu_fn<A>> {
  using type = act::elu<A>;
};
template <>
struct activation_of<fnn::act::selu_fn> {
  using type = act::selu;
};
template <>
struct activation_of<fnn::act::sigmoid_fn> {
  using type = act::sigmoid;
};
template <>
struct activation_of<fnn::act::tanh_fn> {
  using type = act::tanh;
};
template <>
struct activation_of<fnn::act::gelu_fn> {
  using type = act::gelu;
};
template <>
struct activation_of<fnn::act::gelu_tanh_fn> {
  using type = act::gelu_tanh;
};
template <>
struct activation_of<fnn::act::swish_fn> {
  using type = act::swish;
};

inline constexpr std::size_t none = std::size_t(-1);

// A network layer and its index in the network.
template <std::size_t I, class L>
struct at {
  static constexpr std::size_t index = I;
  using layer = L;
};
template <class... A>
struct list {};

// One deploy layer and the indices of the network layers it comes from (none where absent).
template <class Deploy, std::size_t Main, std::size_t Norm = none, std::size_t Act = none>
struct entry {
  using type = Deploy;
  static constexpr std::size_t main = Main, norm = Norm, act = Act;
};

template <class L>
inline constexpr bool is_dropout = false;
template <class T, std::size_t F, double P>
inline constexpr bool is_dropout<dropout_layer<T, F, P>> = true;

// The network's layers with their indices, dropout left out (it is the identity in eval mode).
template <class Tuple, class Seq>
struct kept;
template <class Tuple, std::size_t... I>
struct kept<Tuple, std::index_sequence<I...>> {
  template <class Acc, class... A>
  struct filter {
    using type = Acc;
  };
  template <class... Acc, class A, class... Rest>
  struct filter<list<Acc...>, A, Rest...> {
    using type = typename filter<std::conditional_t<is_dropout<typename A::layer>, list<Acc...>, list<Acc..., A>>,
                                 Rest...>::type;
  };
  using type = typename filter<list<>, at<I, std::tuple_element_t<I, Tuple>>...>::type;
};

// Lowering, one pattern per specialization; the longest match for a dense layer wins.
template <class Done, class Todo>
struct lower;
template <class... D>
struct lower<list<D...>, list<>> {
  using type = list<D...>;
};
template <class... D, std::size_t I, class T, std::size_t In, std::size_t Out, class Init, class Hint, bool B,
          class... Rest>
struct lower<list<D...>, list<at<I, dense_layer<T, In, Out, Init, Hint, B>>, Rest...>> {
  template <class R>
  struct step {  // dense alone
    using type = typename lower<list<D..., entry<dense<In, Out>, I>>, R>::type;
  };
  template <std::size_t K, class Fn, class... R>
  struct step<list<at<K, activation_layer<T, Out, Fn>>, R...>> {
    using type = typename lower<list<D..., entry<dense<In, Out, typename activation_of<Fn>::type>, I, none, K>>,
                                list<R...>>::type;
  };
  template <std::size_t J, class... R>
  struct step<list<at<J, batch_norm_layer<T, Out>>, R...>> {
    using type = typename lower<list<D..., entry<dense<In, Out>, I, J>>, list<R...>>::type;
  };
  template <std::size_t J, std::size_t K, class Fn, class... R>
  struct step<list<at<J, batch_norm_layer<T, Out>>, at<K, activation_layer<T, Out, Fn>>, R...>> {
    using type =
        typename lower<list<D..., entry<dense<In, Out, typename activation_of<Fn>::type>, I, J, K>>, list<R...>>::type;
  };
  using type = typename step<list<Rest...>>::type;
};
template <class... D, std::size_t I, class T, std::size_t F, class... Rest>
struct lower<list<D...>, list<at<I, batch_norm_layer<T, F>>, Rest...>> {
  using type = typename lower<list<D..., entry<scale_shift<F>, I>>, list<Rest...>>::type;
};
template <class... D, std::size_t I, class T, std::size_t F, class... Rest>
struct lower<list<D...>, list<at<I, layer_norm_layer<T, F>>, Rest...>> {
  using type = typename lower<list<D..., entry<layer_norm<F>, I>>, list<Rest...>>::type;
};
template <class... D, std::size_t I, class T, std::size_t F, std::size_t G, class... Rest>
struct lower<list<D...>, list<at<I, group_norm_layer<T, F, G>>, Rest...>> {
  using type = typename lower<list<D..., entry<group_norm<F, G>, I>>, list<Rest...>>::type;
};
template <class... D, std::size_t I, class T, std::size_t F, class... Rest>
struct lower<list<D...>, list<at<I, prelu_layer<T, F>>, Rest...>> {
  using type = typename lower<list<D..., entry<prelu<F>, I>>, list<Rest...>>::type;
};
template <class... D, std::size_t I, class T, std::size_t In, std::size_t P, class... Rest>
struct lower<list<D...>, list<at<I, maxout_layer<T, In, P>>, Rest...>> {
  using type = typename lower<list<D..., entry<maxout<In, P>, I>>, list<Rest...>>::type;
};
template <class... D, std::size_t I, class T, std::size_t F, class Fn, class... Rest>
struct lower<list<D...>, list<at<I, activation_layer<T, F, Fn>>, Rest...>> {
  using type = typename lower<list<D..., entry<activation<F, typename activation_of<Fn>::type>, I>>,
                              list<Rest...>>::type;
};

template <class Net>
using entries_of =
    typename lower<list<>, typename kept<typename Net::layers_type,
                                         std::make_index_sequence<std::tuple_size_v<typename Net::layers_type>>>::type>::type;

template <class Batch, class Entries>
struct model_from;
template <class Batch, class... E>
struct model_from<Batch, list<E...>> {
  using type = model<Batch, typename E::type...>;
};

// Copies the network layers of entry E into the deploy layer's params.
template <class E, class Layers, class P>
void fill(Layers& layers, P& p) {
  using deploy_layer = typename E::type;
  auto& src = std::get<E::main>(layers);
  using src_t = std::remove_reference_t<decltype(src)>;
  if constexpr (requires { src.weight(); } && requires { src_t::has_bias; }) {  // dense
    constexpr std::size_t in = deploy_layer::in_features, out = deploy_layer::out_features;
    const auto* w = src.weight().data();
    const auto* b = src_t::has_bias ? src.bias().data() : nullptr;
    if constexpr (E::norm != none) {
      auto& bn = std::get<E::norm>(layers);
      fold_dense_batch_norm(in, out, w, b, bn.gamma().data(), bn.beta().data(), bn.running_mean().data(),
                            bn.running_var().data(), p.weight, p.bias);
    } else {
      for (std::size_t i = 0; i < in * out; ++i) p.weight[i] = float(w[i]);
      for (std::size_t o = 0; o < out; ++o) p.bias[o] = b != nullptr ? float(b[o]) : 0.0f;
    }
  } else if constexpr (requires { src.running_var(); }) {  // batch norm alone
    fold_batch_norm(deploy_layer::in_features, src.gamma().data(), src.beta().data(), src.running_mean().data(),
                    src.running_var().data(), p.scale, p.shift);
  } else if constexpr (requires { p.gamma; }) {  // layer or group norm: weight then bias, through the visitor
    std::size_t k = 0;
    src.for_each_parameter(0, [&](auto& ref) {
      for (std::size_t j = 0; j < ref.value.size(); ++j) (k == 0 ? p.gamma : p.beta)[j] = float(ref.value[j]);
      ++k;
    });
  } else if constexpr (requires { p.slope; }) {  // prelu
    src.for_each_parameter(0, [&](auto& ref) { p.slope = float(ref.value[0]); });
  }
}

}  // namespace detail

// The deploy model type of a network type.
template <class Net, class Batch = static_batch<1>>
using model_of = typename detail::model_from<Batch, detail::entries_of<Net>>::type;

// Fills `out` from the network's current parameters and running statistics.
template <class Net, class Batch>
void freeze_into(Net& net, model_of<Net, Batch>& out) {
  [&]<class... Es>(detail::list<Es...>) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (detail::fill<typename detail::nth<I, Es...>::type>(net.layers(), detail::get<I>(out.params)), ...);
    }(std::make_index_sequence<sizeof...(Es)>{});
  }(detail::entries_of<Net>{});
}

// A heap-allocated model (the weights of a large net do not belong on the stack); predict() itself never
// allocates.
template <class Batch = static_batch<1>, class Net>
std::unique_ptr<model_of<Net, Batch>> freeze(Net& net) {
  auto m = std::make_unique<model_of<Net, Batch>>();
  freeze_into<Net, Batch>(net, *m);
  return m;
}

}  // namespace fnn::deploy
