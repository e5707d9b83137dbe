#pragma once
// Checkpoint averaging (the weights of the last K checkpoints of one run, as in "Averaging Weights Leads to
// Wider Optima", Izmailov et al. 2018) and the batch-norm statistics that must be recomputed afterwards: the
// running statistics of the averaged weights are not the average of the running statistics.
//
//   net_t avg;
//   fnn::train::average_checkpoints(avg, {"epoch-8.safetensors", "epoch-9.safetensors", "epoch-10.safetensors"});
//   fnn::train::recompute_batch_norm(avg, steps, [&](fnn::index_t s) { return batch(s); });
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/parameter.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/layers/batch_norm.hpp"

namespace fnn::train {

namespace detail {

// Every floating-point array of a network (parameters, then buffers), as spans in a fixed order.
template <class Net>
std::vector<std::span<typename Net::value_type>> arrays_of(Net& net) {
  using T = typename Net::value_type;
  std::vector<std::span<T>> out;
  net.for_each_parameter([&](parameter_ref<T>& p) { out.push_back(p.value); });
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter == nullptr) out.push_back(b.value);
  });
  return out;
}

}  // namespace detail

// out = the element-wise mean of the networks (parameters and buffers, summed in double).
template <class Net>
void average_weights(Net& out, std::span<Net* const> nets) {
  using T = typename Net::value_type;
  if (nets.empty()) throw value_error("average_weights: no network to average");
  const auto dst = detail::arrays_of(out);
  std::vector<std::vector<double>> sum(dst.size());
  for (std::size_t a = 0; a < dst.size(); ++a) sum[a].assign(dst[a].size(), 0.0);
  for (Net* n : nets) {
    const auto src = detail::arrays_of(*n);
    for (std::size_t a = 0; a < dst.size(); ++a)
      for (std::size_t i = 0; i < src[a].size(); ++i) sum[a][i] += double(src[a][i]);
  }
  for (std::size_t a = 0; a < dst.size(); ++a)
    for (std::size_t i = 0; i < dst[a].size(); ++i) dst[a][i] = T(sum[a][i] / double(nets.size()));
}

// Loads each model checkpoint (io::load_model: names, shapes and dtypes checked) and averages them into `out`.
template <class Net>
void average_checkpoints(Net& out, const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw value_error("average_checkpoints: no checkpoint given");
  std::vector<std::unique_ptr<Net>> nets;
  std::vector<Net*> ptrs;
  for (const auto& f : files) {
    nets.push_back(std::make_unique<Net>());
    io::load_model(f, *nets.back());
    ptrs.push_back(nets.back().get());
  }
  average_weights(out, std::span<Net* const>(ptrs));
}

// Replaces every batch_norm's running mean and variance by their equal-weight average over `steps` batches of
// training data, batch(s) -> const_matrix_view<float> for s = 0 .. steps-1, as torch.optim.swa_utils.update_bn
// (momentum None). Each batch runs in train mode, as there: the layers after a batch norm see batch-normalized
// inputs. fnn's batch_norm has the fixed momentum 0.1, so the batch's own statistic is recovered from the
// update, b = (r - (1 - m) r_old) / m, then averaged in double. num_batches_tracked becomes `steps`. Draws
// dropout masks from the network's stream like any train-mode forward.
template <class Net, class BatchOf>
void recompute_batch_norm(Net& net, index_t steps, BatchOf&& batch) {
  using T = typename Net::value_type;
  constexpr double m = batch_norm_layer<T, 1>::momentum;
  if (steps < 1) throw value_error("recompute_batch_norm: needs at least one batch, got " + std::to_string(steps));
  std::vector<std::span<T>> stats;
  std::vector<std::int64_t*> counters;
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter != nullptr) counters.push_back(b.counter);
    else if (b.suffix == "running_mean" || b.suffix == "running_var") stats.push_back(b.value);
  });
  if (stats.empty()) return;
  std::vector<std::vector<double>> avg(stats.size()), old(stats.size());
  for (std::size_t a = 0; a < stats.size(); ++a) avg[a].assign(stats[a].size(), 0.0);
  for (index_t s = 0; s < steps; ++s) {
    for (std::size_t a = 0; a < stats.size(); ++a) old[a].assign(stats[a].begin(), stats[a].end());
    net.forward(batch(s), mode::train);
    for (std::size_t a = 0; a < stats.size(); ++a)
      for (std::size_t i = 0; i < stats[a].size(); ++i) {
        const double b = (double(stats[a][i]) - (1 - m) * old[a][i]) / m;
        avg[a][i] += (b - avg[a][i]) / double(s + 1);
        stats[a][i] = T(old[a][i]);  // the next batch's update starts from a known value
      }
  }
  for (std::size_t a = 0; a < stats.size(); ++a)
    for (std::size_t i = 0; i < stats[a].size(); ++i) stats[a][i] = T(avg[a][i]);
  for (auto* c : counters) *c = std::int64_t(steps);
}

}  // namespace fnn::train
