#pragma once
// Seeded shuffling into mini-batches. Each epoch draws from its own engine, derived from (seed, epoch) by the
// splitmix64 finalizer: an epoch's shuffle and augmentation do not depend on what ran before it, which is what
// lets a resumed run reproduce an uninterrupted one exactly.
//
//   auto rng = fnn::data::epoch_engine(seed, epoch);
//   const auto order = fnn::data::shuffled_indices(n, rng);
//   for (fnn::index_t s = 0; s < fnn::data::steps_per_epoch(n, batch); ++s)
//     for (std::int32_t i : fnn::data::batch_of(order, s, batch)) ...
#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn::data {

inline std::uint64_t splitmix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline std::mt19937_64 epoch_engine(std::uint64_t seed, int epoch) {
  return std::mt19937_64(splitmix64(seed + 0x9E3779B97F4A7C15ull * std::uint64_t(epoch + 1)));
}

// 0, 1, ..., n-1 in a uniformly random order (Fisher-Yates; rng() % i, whose bias is below 2^-40 for data set
// sizes, keeps the order identical across standard libraries, unlike std::shuffle).
template <class Rng>
std::vector<std::int32_t> shuffled_indices(index_t n, Rng& rng) {
  if (n < 0 || n > index_t(INT32_MAX)) throw value_error("shuffled_indices: n must be in [0, 2^31), got " + std::to_string(n));
  std::vector<std::int32_t> idx(std::size_t(n), 0);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = std::int32_t(i);
  for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);
  return idx;
}

// Mini-batches per epoch: a last batch of fewer than `min_last` samples is dropped (batch_norm needs two).
inline index_t steps_per_epoch(index_t n, index_t batch, index_t min_last = 2) {
  if (batch < 1) throw value_error("steps_per_epoch: batch must be >= 1, got " + std::to_string(batch));
  return n / batch + (n % batch >= std::max<index_t>(min_last, 1) ? 1 : 0);
}

// The indices of mini-batch `step` of an epoch's order.
inline std::span<const std::int32_t> batch_of(std::span<const std::int32_t> order, index_t step, index_t batch) {
  const auto first = std::size_t(step * batch);
  if (step < 0 || first >= order.size())
    throw shape_error("batch_of: step " + std::to_string(step) + " of batch " + std::to_string(batch) + " is past " +
                      std::to_string(order.size()) + " samples");
  return order.subspan(first, std::min(std::size_t(batch), order.size() - first));
}

}  // namespace fnn::data
