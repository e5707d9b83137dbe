#pragma once
// An inference-only network with compile-time shapes and a static batch:
//
//   using model_t = fnn::deploy::model<fnn::deploy::static_batch<1>,
//                                      fnn::deploy::dense<784, 256, fnn::deploy::act::gelu>,
//                                      fnn::deploy::dense<256, 10>>;
//   static_assert(model_t::scratch_bytes <= 16 * 1024);
//   model.predict(image, logits);   // noexcept, no heap
//
// model is an aggregate whose only member, `params`, holds every layer's fixed-size arrays, so a generated
// header (fnn-export) can make it an `inline constexpr` object that lands in flash / .rodata, and freeze()
// (deploy/freeze.hpp, host only) can fill one from a trained network. Builds with -fno-exceptions -fno-rtti and
// without iostream, <filesystem>, zlib or xsimd.
#include <cstddef>
#include <cstdint>
#include <utility>

#include "fnn/core/diagnostics.hpp"
#include "fnn/deploy/layers.hpp"

namespace fnn::deploy {

template <std::size_t N>
struct static_batch final {
  static_assert(N > 0, "fnn: deploy::static_batch needs at least one sample");
  static constexpr std::size_t value = N;
};

// What predict_rows() reports instead of throwing.
enum class status : std::uint8_t { ok = 0, empty_batch, batch_too_large, null_pointer };

namespace detail {

// The layers' params one after the other, as a nested aggregate (std::tuple is not one, so it could not be
// brace-initialized in a constexpr header).
template <class... P>
struct param_pack {};
template <class P, class... Rest>
struct param_pack<P, Rest...> {
  P head;
  param_pack<Rest...> tail;
};

template <std::size_t I, class Pack>
constexpr auto& get(Pack& p) noexcept {
  if constexpr (I == 0) return p.head;
  else return get<I - 1>(p.tail);
}

template <std::size_t I, class... L>
struct nth;
template <class L, class... Rest>
struct nth<0, L, Rest...> {
  using type = L;
};
template <std::size_t I, class L, class... Rest>
struct nth<I, L, Rest...> {
  using type = typename nth<I - 1, Rest...>::type;
};

// Each layer takes the width the one before gives; a mismatch names the layer and both widths.
template <class... L>
constexpr bool widths_chain() {
  if constexpr (sizeof...(L) < 2) {
    return true;
  } else {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      return (diagnostics::holds<typename diagnostics::at_deploy_layer<I + 1>::template takes_in_features<
                  nth<I + 1, L...>::type::in_features>::template but_the_layer_before_gives<
                  nth<I, L...>::type::out_features>> &&
              ... && true);
    }(std::make_index_sequence<sizeof...(L) - 1>{});
  }
}

// The widest intermediate activation of each parity: activation k (the output of layer k - 1, 1 <= k < layers)
// lives in ping-pong buffer k % 2, so one buffer is never read and written by the same layer.
template <std::size_t Parity, class... L>
constexpr std::size_t widest() {
  constexpr std::size_t out[] = {L::out_features...};
  std::size_t w = 0;
  for (std::size_t k = 1; k < sizeof...(L); ++k)
    if (k % 2 == Parity && out[k - 1] > w) w = out[k - 1];
  return w;
}

}  // namespace detail

template <class Batch, class... Layers>
struct model final {
  static_assert(sizeof...(Layers) > 0, "fnn: a deploy model needs a layer");
  static_assert(detail::widths_chain<Layers...>());

  template <std::size_t I>
  using layer = typename detail::nth<I, Layers...>::type;
  using params_type = detail::param_pack<typename Layers::params...>;

  static constexpr std::size_t layer_count = sizeof...(Layers);
  static constexpr std::size_t batch = Batch::value;
  static constexpr std::size_t in_features = layer<0>::in_features;
  static constexpr std::size_t out_features = layer<layer_count - 1>::out_features;
  static constexpr std::size_t input_size = batch * in_features;    // floats predict reads
  static constexpr std::size_t output_size = batch * out_features;  // floats predict writes
  static constexpr std::size_t parameter_count = (Layers::parameter_count + ...);
  static constexpr std::size_t weight_bytes = parameter_count * sizeof(float);
  static constexpr std::size_t scratch_offset = batch * detail::widest<0, Layers...>();  // buffer 1 starts here
  static constexpr std::size_t scratch_floats = scratch_offset + batch * detail::widest<1, Layers...>();
  static constexpr std::size_t scratch_bytes = scratch_floats * sizeof(float);

  params_type params;

  // batch samples of in_features floats -> batch samples of out_features floats; `in` and `out` must not
  // overlap. Scratch on the stack (scratch_bytes of it).
  void predict(const float* in, float* out) const noexcept {
    float scratch[scratch_floats > 0 ? scratch_floats : 1];
    run(in, out, scratch, batch);
  }
  // The same with a caller's buffer of scratch_floats floats (a static arena, say).
  void predict(const float* in, float* out, float* scratch) const noexcept { run(in, out, scratch, batch); }

  // Fewer samples than the static batch (a partial last batch); misuse is reported, not undefined.
  status predict_rows(const float* in, std::size_t rows, float* out) const noexcept {
    if (in == nullptr || out == nullptr) return status::null_pointer;
    if (rows == 0) return status::empty_batch;
    if (rows > batch) return status::batch_too_large;
    float scratch[scratch_floats > 0 ? scratch_floats : 1];
    run(in, out, scratch, rows);
    return status::ok;
  }

 private:
  void run(const float* in, float* out, float* scratch, std::size_t rows) const noexcept {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (run_layer<I>(in, out, scratch, rows), ...);
    }(std::make_index_sequence<layer_count>{});
  }
  template <std::size_t I>
  void run_layer(const float* in, float* out, float* scratch, std::size_t rows) const noexcept {
    const float* x = I == 0 ? in : scratch + (I % 2 ? scratch_offset : 0);
    float* y = I + 1 == layer_count ? out : scratch + ((I + 1) % 2 ? scratch_offset : 0);
    layer<I>::run(detail::get<I>(params), x, y, rows);
  }
};

template <std::size_t I, class Batch, class... L>
constexpr auto& params_of(model<Batch, L...>& m) noexcept {
  return detail::get<I>(m.params);
}

}  // namespace fnn::deploy
