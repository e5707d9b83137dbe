#pragma once
// The compile-time fusion plan: a network's layer list rewritten into stages.
//
// The rules are the table `plan::detail::rules` below, in priority order (the first whose pattern matches at
// a position wins); a layer no rule covers becomes a single stage running its own reference code:
//
//   dense, batch_norm, act  ->  stage<dense_bn_act, i, 3>   GEMM + statistics epilogue, one normalize+act pass
//   dense, layer_norm, act  ->  stage<dense_ln_act, i, 3>   GEMM with bias, one per-row normalize+act pass
//   dense, act              ->  stage<dense_act, i, 2>      GEMM with bias + activation in the epilogue
//   dense                   ->  stage<dense_only, i, 1>     GEMM with bias in the epilogue
//   batch_norm, act         ->  stage<bn_act, i, 2>         statistics pass + one normalize+act pass
//   anything else           ->  stage<single, i, 1>         the layer's own (reference) forward/backward
//
// A new fused pattern is a row of that table plus its stage_runner (network/stages.hpp), whose element-wise
// passes are expressions (expr/); fnn::unfused runs the same network layer by layer as its reference.
// `act` is any element-wise activation (activation_spec: sigmoid ... swish); PReLU and maxout stay
// single stages. The plan is a type, so tests static_assert on it:
//   static_assert(std::is_same_v<net_t::plan, fnn::plan::stages<fnn::plan::stage<dense_bn_act, 0, 3>, ...>>);
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "fnn/layers/activations.hpp"
#include "fnn/layers/batch_norm.hpp"
#include "fnn/layers/layer_norm.hpp"
#include "fnn/layers/layer.hpp"

namespace fnn {

// Execution policies: fused runs the plan, unfused runs every layer's reference code one at a time.
struct fused final {};
struct unfused final {};

namespace plan {

enum class stage_kind { single, dense_only, dense_act, dense_bn_act, dense_ln_act, bn_act };

template <stage_kind Kind, std::size_t First, std::size_t Count>
struct stage final {
  static constexpr stage_kind kind = Kind;
  static constexpr std::size_t first = First;
  static constexpr std::size_t count = Count;
};

template <class... Stages>
struct stages final {
  static constexpr std::size_t size = sizeof...(Stages);
};

namespace detail {

enum class token { dense, batch_norm, layer_norm, activation, other };

template <class S>
constexpr token classify() {
  if constexpr (!layer_spec<S>) return token::other;
  else if constexpr (S::role == layer_role::dense) return token::dense;
  else if constexpr (std::is_same_v<S, batch_norm>) return token::batch_norm;
  else if constexpr (std::is_same_v<S, layer_norm>) return token::layer_norm;
  else if constexpr (S::role == layer_role::activation && requires { typename S::function; })
    return token::activation;  // element-wise, parameter-free (PReLU and maxout have no `function`)
  else return token::other;
}

struct entry {
  stage_kind kind = stage_kind::single;
  std::size_t first = 0, count = 1;
};

template <std::size_t N>
struct grouping {
  std::array<entry, N> entries{};
  std::size_t size = 0;
};

// The fusion rules (pattern -> stage kind), in priority order.
struct rule {
  stage_kind kind;
  std::size_t length;
  std::array<token, 3> pattern;
};
inline constexpr std::array rules{
    rule{stage_kind::dense_bn_act, 3, {token::dense, token::batch_norm, token::activation}},
    rule{stage_kind::dense_ln_act, 3, {token::dense, token::layer_norm, token::activation}},
    rule{stage_kind::dense_act, 2, {token::dense, token::activation}},
    rule{stage_kind::dense_only, 1, {token::dense}},
    rule{stage_kind::bn_act, 2, {token::batch_norm, token::activation}},
};

template <std::size_t N>
constexpr grouping<N> group(const std::array<token, N>& t) {
  grouping<N> g;
  auto at = [&](std::size_t i) { return i < N ? t[i] : token::other; };
  const auto matches = [&](const rule& r, std::size_t i) {
    for (std::size_t k = 0; k < r.length; ++k)
      if (at(i + k) != r.pattern[k]) return false;
    return true;
  };
  for (std::size_t i = 0; i < N;) {
    entry e{stage_kind::single, i, 1};
    for (const rule& r : rules)
      if (matches(r, i)) {
        e = {r.kind, i, r.length};
        break;
      }
    g.entries[g.size++] = e;
    i += e.count;
  }
  return g;
}

template <class... Specs>
struct make {
  static constexpr std::size_t n = sizeof...(Specs);
  static constexpr auto g = group<n>(std::array<token, n>{classify<Specs>()...});
  template <std::size_t... I>
  static auto build(std::index_sequence<I...>)
      -> stages<stage<g.entries[I].kind, g.entries[I].first, g.entries[I].count>...>;
  using type = decltype(build(std::make_index_sequence<g.size>{}));
};

template <class... Specs>
struct make_unfused {
  template <std::size_t... I>
  static auto build(std::index_sequence<I...>) -> stages<stage<stage_kind::single, I, 1>...>;
  using type = decltype(build(std::make_index_sequence<sizeof...(Specs)>{}));
};

}  // namespace detail

template <class Policy, class... Specs>
using of = typename std::conditional_t<std::is_same_v<Policy, unfused>, detail::make_unfused<Specs...>,
                                       detail::make<Specs...>>::type;

}  // namespace plan
}  // namespace fnn
