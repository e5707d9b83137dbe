#pragma once
// Named, typed views of a network's parameters and buffers. Optimizers, I/O and tests walk a
// network through these (net.for_each_parameter(f), net.for_each_buffer(f)); nothing else needs to
// know how a layer stores its arrays.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fnn/core/config.hpp"

namespace fnn {

// What a parameter is for; optimizers use it for defaults such as "no weight decay on biases and norms".
enum class parameter_kind { weight, bias, norm_scale, norm_shift, activation_parameter };

inline constexpr bool decays_by_default(parameter_kind k) noexcept { return k == parameter_kind::weight; }

// Names follow PyTorch's nn.Sequential state_dict: "<module index>.<suffix>", e.g. "0.weight".
inline std::string qualified_name(index_t module, std::string_view suffix) {
  std::string s = std::to_string(module);
  s += '.';
  s += suffix;
  return s;
}

template <class T>
struct parameter_ref {
  index_t module = 0;       // index of the layer in the sequential (input<> not counted), as in PyTorch
  std::string_view suffix;  // "weight", "bias", ...
  parameter_kind kind = parameter_kind::weight;
  std::span<T> value;
  std::span<T> grad;  // same size as value
  std::array<index_t, 2> shape{};  // [out, in] for dense weights, [n, 1] with rank 1 for vectors
  int rank = 1;
  // Frozen (net.freeze(i), net.freeze_parameter(name); torch's requires_grad == False): backward computes no
  // gradient for it (grad stays as zero_grad left it) and optimizers neither update nor decay it.
  bool frozen = false;

  std::string name() const { return qualified_name(module, suffix); }
};

// Non-trainable state saved in checkpoints: running statistics (T) and counters (int64).
template <class T>
struct buffer_ref {
  index_t module = 0;
  std::string_view suffix;  // "running_mean", "running_var", "num_batches_tracked"
  std::span<T> value;        // empty for counters
  std::int64_t* counter = nullptr;  // set for counters (rank 0 tensors in PyTorch)
  index_t size = 0;

  std::string name() const { return qualified_name(module, suffix); }
};

}  // namespace fnn
