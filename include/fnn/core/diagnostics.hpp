#pragma once
// The one file of compile-time diagnostics. A static_assert message cannot hold numbers in C++20,
// so each check is named as a sentence whose template arguments are the numbers, e.g.
//
//   fnn::diagnostics::at_layer<1>::dense_declares_in_features<128>::but_the_previous_layer_produces<256>
//
// GCC 12 prints that name on its "In instantiation of" line right above the error, Clang 14 on the
// error line itself ("static_assert failed due to requirement '<name>::ok'"): the static_assert
// spells its own qualified name because Clang prints the requirement as written.
//
// Use: static_assert(fnn::diagnostics::holds<fnn::diagnostics::...>);
#include <cstddef>
#include <type_traits>

namespace fnn::diagnostics {

// Instantiating C runs its static_assert (a hard error, not a substitution failure). `holds` is
// true whatever happened, so the caller's own assertion never adds a second error; asking for
// sizeof(C) outside a requires-expression would (Clang reports the invalid class again).
template <class C>
inline constexpr bool holds = requires { sizeof(C); } || true;

// A check that always passes, for places that check nothing (activations without parameters).
struct passes final {};

template <class First>
struct the_first_type_of_sequential {
  template <bool is_fnn_input>
  struct is_fnn_input_features {
    static constexpr bool ok = is_fnn_input;
    static_assert(fnn::diagnostics::the_first_type_of_sequential<First>::template is_fnn_input_features<
                      is_fnn_input>::ok,
                  "fnn: a sequential network must start with fnn::input<features>, e.g. "
                  "fnn::sequential<fnn::input<784>, fnn::dense<10>>");
  };
};

template <std::size_t layer_count>
struct sequential_has_layers_after_input {
  template <std::size_t minimum>
  struct but_needs_at_least {
    static constexpr bool ok = layer_count >= minimum;
    static_assert(fnn::diagnostics::sequential_has_layers_after_input<layer_count>::template but_needs_at_least<
                      minimum>::ok,
                  "fnn: a sequential network needs at least one layer after fnn::input<features>");
  };
};

template <std::size_t features>
struct fnn_input_declares_features {
  struct which_must_be_positive {
    static constexpr bool ok = features > 0;
    static_assert(fnn::diagnostics::fnn_input_declares_features<features>::which_must_be_positive::ok,
                  "fnn: fnn::input<features> needs features > 0");
  };
};

template <std::size_t dimension_count>
struct dense_is_given_sizes {
  struct but_takes_one_or_two {
    static constexpr bool ok = dimension_count == 1 || dimension_count == 2;
    static_assert(fnn::diagnostics::dense_is_given_sizes<dimension_count>::but_takes_one_or_two::ok,
                  "fnn: dense takes one size (dense<out>, in-features inferred) or two (dense<in, out>)");
  };
};

// Checks of one layer; layer_index counts the layers after fnn::input from 0, as summary() does.
template <std::size_t layer_index>
struct at_layer {
  template <class Type>
  struct the_type {
    template <bool is_layer>
    struct is_an_fnn_layer {
      static constexpr bool ok = is_layer;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template the_type<Type>::template is_an_fnn_layer<
                        is_layer>::ok,
                    "fnn: this type in the layer list is not an fnn layer (expected fnn::dense, fnn::batch_norm, "
                    "an activation, ...)");
    };
  };

  template <std::size_t out_features>
  struct dense_declares_out_features {
    struct which_must_be_positive {
      static constexpr bool ok = out_features > 0;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template dense_declares_out_features<
                        out_features>::which_must_be_positive::ok,
                    "fnn: a dense layer needs at least one output feature");
    };
  };

  template <std::size_t got_in_features>
  struct dense_declares_in_features {
    template <std::size_t expected_in_features>
    struct but_the_previous_layer_produces {
      static constexpr bool ok = got_in_features == expected_in_features;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template dense_declares_in_features<
                        got_in_features>::template but_the_previous_layer_produces<expected_in_features>::ok,
                    "fnn: dense<in, out> must declare as many input features as the layer before it produces "
                    "(or write dense<out> to infer them)");
    };
  };

  template <std::size_t pieces>
  struct maxout_pieces {
    template <std::size_t in_features>
    struct must_divide_in_features {
      static constexpr bool ok = pieces > 0 && in_features % pieces == 0;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template maxout_pieces<
                        pieces>::template must_divide_in_features<in_features>::ok,
                    "fnn: maxout<pieces> needs in-features divisible by pieces (each output is the max of "
                    "`pieces` consecutive inputs)");
    };
  };

  template <std::size_t groups>
  struct group_norm_groups {
    template <std::size_t in_features>
    struct must_divide_in_features {
      static constexpr bool ok = groups > 0 && in_features % groups == 0;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template group_norm_groups<
                        groups>::template must_divide_in_features<in_features>::ok,
                    "fnn: group_norm<groups> needs in-features divisible by groups (each group normalizes "
                    "in_features / groups consecutive features)");
    };
  };

  template <double p>
  struct dropout_probability {
    struct must_be_at_least_0_and_below_1 {
      static constexpr bool ok = p >= 0.0 && p < 1.0;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template dropout_probability<
                        p>::must_be_at_least_0_and_below_1::ok,
                    "fnn: dropout<p> needs 0 <= p < 1");
    };
  };

  template <double slope>
  struct leaky_relu_slope {
    struct must_be_non_negative {
      static constexpr bool ok = slope >= 0.0;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template leaky_relu_slope<slope>::must_be_non_negative::ok,
                    "fnn: leaky_relu<slope> needs slope >= 0");
    };
  };

  template <double alpha>
  struct elu_alpha {
    struct must_be_positive {
      static constexpr bool ok = alpha > 0.0;
      static_assert(fnn::diagnostics::at_layer<layer_index>::template elu_alpha<alpha>::must_be_positive::ok,
                    "fnn: elu<alpha> needs alpha > 0");
    };
  };
};

template <class Loss>
struct the_loss {
  template <std::size_t min_outputs>
  struct needs_network_outputs {
    template <std::size_t network_outputs>
    struct but_the_network_has {
      static constexpr bool ok = network_outputs >= min_outputs;
      static_assert(fnn::diagnostics::the_loss<Loss>::template needs_network_outputs<
                        min_outputs>::template but_the_network_has<network_outputs>::ok,
                    "fnn: the network has fewer outputs than the loss needs (softmax_cross_entropy: one per "
                    "class, at least 2)");
    };
  };
};

// train_step(x, target, loss, opt): what opt must be.
template <class Optimizer>
struct the_optimizer_argument {
  template <bool is_schedule>
  struct is_a_learning_rate_schedule {
    static constexpr bool ok = !is_schedule;
    static_assert(fnn::diagnostics::the_optimizer_argument<Optimizer>::template is_a_learning_rate_schedule<
                      is_schedule>::ok,
                  "fnn: train_step needs an optimizer (fnn::optim::sgd, adam, ...), not a schedule; a schedule "
                  "sets the optimizer's rate: opt.set_lr(schedule.lr_at(step))");
  };
  template <bool can_step>
  struct has_step_taking_the_network {
    static constexpr bool ok = can_step;
    static_assert(fnn::diagnostics::the_optimizer_argument<Optimizer>::template has_step_taking_the_network<
                      can_step>::ok,
                  "fnn: train_step needs an optimizer with opt.step(network) (fnn::optim::sgd, adam, ...)");
  };
  template <class OptimizerElement>
  struct has_element_type {
    template <class NetworkElement>
    struct but_the_network_has {
      static constexpr bool ok = std::is_same_v<OptimizerElement, NetworkElement>;
      static_assert(fnn::diagnostics::the_optimizer_argument<Optimizer>::template has_element_type<
                        OptimizerElement>::template but_the_network_has<NetworkElement>::ok,
                    "fnn: the optimizer's element type differs from the network's (e.g. basic_sgd<double> for a "
                    "float network)");
    };
  };
};

// fnn::deploy (deploy/model.hpp, deploy/layers.hpp).
template <std::size_t layer_index>
struct at_deploy_layer {
  template <std::size_t got_in_features>
  struct takes_in_features {
    template <std::size_t expected_in_features>
    struct but_the_layer_before_gives {
      static constexpr bool ok = got_in_features == expected_in_features;
      static_assert(fnn::diagnostics::at_deploy_layer<layer_index>::template takes_in_features<
                        got_in_features>::template but_the_layer_before_gives<expected_in_features>::ok,
                    "fnn: a deploy layer must take as many features as the layer before it gives");
    };
  };
};

template <std::size_t pieces>
struct deploy_maxout_pieces {
  template <std::size_t in_features>
  struct must_divide_in_features {
    static constexpr bool ok = pieces > 0 && in_features % pieces == 0;
    static_assert(fnn::diagnostics::deploy_maxout_pieces<pieces>::template must_divide_in_features<in_features>::ok,
                  "fnn: deploy::maxout<in_features, pieces> needs in_features divisible by pieces");
  };
};

template <std::size_t groups>
struct deploy_group_norm_groups {
  template <std::size_t in_features>
  struct must_divide_in_features {
    static constexpr bool ok = groups > 0 && in_features % groups == 0;
    static_assert(fnn::diagnostics::deploy_group_norm_groups<groups>::template must_divide_in_features<in_features>::ok,
                  "fnn: deploy::group_norm<in_features, groups> needs in_features divisible by groups");
  };
};

}  // namespace fnn::diagnostics
