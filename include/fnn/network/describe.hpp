#pragma once
// A network's layer list as text, for checkpoint metadata ("fnn.layers"), so that a tool that does not know
// the network's C++ type (fnn-eval) can still rebuild and run it:
//
//   fnn::layers_text<net_t>() == "dense 784 256; batch_norm 256 256; gelu 256 256; dense 256 10"
//
// One "; "-separated entry per layer, in order: its name, in- and out-features, then key=value options where
// the layer has any (dense without bias: "bias=0"; leaky_relu "slope=", elu "alpha=", dropout "p=",
// maxout "pieces=", group_norm "groups="). Entry i owns the checkpoint tensors "i.weight", "i.bias", ... (PyTorch's numbering).
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <utility>

#include "fnn/layers/activations.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/layers/dropout.hpp"
#include "fnn/layers/group_norm.hpp"

namespace fnn {
namespace detail {

// The shortest of %.15g / %.17g that reads back as the same double.
inline std::string option_text(const char* key, double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.15g", v);
  if (std::strtod(b, nullptr) != v) std::snprintf(b, sizeof b, "%.17g", v);
  return " " + std::string(key) + "=" + b;
}

template <class Layer>
struct layer_options {
  static std::string text() { return ""; }
};
template <class T, std::size_t In, std::size_t Out, class Init, class Hint>
struct layer_options<dense_layer<T, In, Out, Init, Hint, false>> {
  static std::string text() { return " bias=0"; }
};
template <class T, std::size_t F, double Slope>
struct layer_options<activation_layer<T, F, act::leaky_relu_fn<Slope>>> {
  static std::string text() { return option_text("slope", Slope); }
};
template <class T, std::size_t F, double Alpha>
struct layer_options<activation_layer<T, F, act::elu_fn<Alpha>>> {
  static std::string text() { return option_text("alpha", Alpha); }
};
template <class T, std::size_t F, double P>
struct layer_options<dropout_layer<T, F, P>> {
  static std::string text() { return option_text("p", P); }
};
template <class T, std::size_t In, std::size_t Pieces>
struct layer_options<maxout_layer<T, In, Pieces>> {
  static std::string text() { return " pieces=" + std::to_string(Pieces); }
};

template <class T, std::size_t F, std::size_t Groups>
struct layer_options<group_norm_layer<T, F, Groups>> {
  static std::string text() { return " groups=" + std::to_string(Groups); }
};

}  // namespace detail

template <class Net>
std::string layers_text() {
  using layers = typename Net::layers_type;
  std::string s;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    ((s += (I ? "; " : "") + std::string(std::tuple_element_t<I, layers>::name) + " " +
           std::to_string(std::tuple_element_t<I, layers>::in_features) + " " +
           std::to_string(std::tuple_element_t<I, layers>::out_features) +
           detail::layer_options<std::tuple_element_t<I, layers>>::text()),
     ...);
  }(std::make_index_sequence<std::tuple_size_v<layers>>{});
  return s;
}

}  // namespace fnn
