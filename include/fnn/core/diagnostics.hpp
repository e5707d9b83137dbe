#pragma once
// The one file of compile-time diagnostics. Each check is a class template whose parameters carry
// the numbers (layer_index, expected, got, ...): GCC prints them in "[with ...]" next to the
// static_assert message, so an error reads like a sentence with the numbers in it.
//
// Use: static_assert(fnn::diagnostics::holds<fnn::diagnostics::some_check<...>>);
#include <cstddef>

namespace fnn::diagnostics {

// Instantiating C runs its static_assert; `holds` is then true so the outer assertion never fires twice.
template <class C>
inline constexpr bool holds = (sizeof(C) > 0);

template <bool first_is_input>
struct sequential_must_start_with_input {
  static_assert(first_is_input,
                "fnn: a sequential network must start with fnn::input<features>, e.g. "
                "fnn::sequential<fnn::input<784>, fnn::dense<10>>");
};

template <std::size_t layer_count>
struct sequential_needs_a_layer {
  static_assert(layer_count > 0, "fnn: a sequential network needs at least one layer after fnn::input<features>");
};

template <std::size_t layer_index, bool is_layer>
struct not_a_layer {
  static_assert(is_layer,
                "fnn: the type at layer_index is not an fnn layer (expected fnn::dense, fnn::batch_norm, an "
                "activation, ...)");
};

template <std::size_t layer_index, std::size_t features>
struct features_must_be_positive {
  static_assert(features > 0, "fnn: a layer at layer_index declares 0 features; feature counts must be positive");
};

template <std::size_t layer_index, std::size_t expected_in_features, std::size_t got_in_features>
struct dense_in_features_mismatch {
  static_assert(expected_in_features == got_in_features,
                "fnn: dense<in, out> at layer_index declares got_in_features input features, but the layer "
                "before it produces expected_in_features");
};

template <std::size_t dimension_count>
struct dense_takes_one_or_two_sizes {
  static_assert(dimension_count == 1 || dimension_count == 2,
                "fnn: dense takes one size (dense<out>, in-features inferred) or two (dense<in, out>), got "
                "dimension_count");
};

template <std::size_t layer_index, std::size_t in_features, std::size_t pieces>
struct maxout_pieces_must_divide_features {
  static_assert(pieces > 0 && in_features % pieces == 0,
                "fnn: maxout<pieces> at layer_index needs in_features divisible by pieces (each output is the "
                "max of `pieces` consecutive inputs)");
};

template <std::size_t layer_index, bool probability_in_range>
struct dropout_probability_out_of_range {
  static_assert(probability_in_range, "fnn: dropout<p> at layer_index needs 0 <= p < 1");
};

template <std::size_t layer_index, bool parameter_valid>
struct activation_parameter_out_of_range {
  static_assert(parameter_valid,
                "fnn: the activation at layer_index has an invalid parameter (leaky_relu needs slope >= 0, elu "
                "needs alpha > 0)");
};

template <std::size_t network_out_features, std::size_t loss_min_features>
struct loss_needs_more_outputs {
  static_assert(network_out_features >= loss_min_features,
                "fnn: softmax_cross_entropy needs a network with at least 2 outputs (one per class), but the "
                "network has network_out_features");
};

// fnn::deploy (deploy/model.hpp, deploy/layers.hpp).
template <std::size_t layer_index, std::size_t expected_in_features, std::size_t got_in_features>
struct deploy_layer_width_mismatch {
  static_assert(expected_in_features == got_in_features,
                "fnn: the deploy layer at layer_index takes got_in_features features, but the layer before it gives "
                "expected_in_features");
};

template <std::size_t in_features, std::size_t pieces>
struct deploy_maxout_pieces_must_divide {
  static_assert(pieces > 0 && in_features % pieces == 0,
                "fnn: deploy::maxout<in_features, pieces> needs in_features divisible by pieces");
};

}  // namespace fnn::diagnostics
