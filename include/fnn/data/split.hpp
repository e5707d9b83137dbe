#pragma once
// A validation split held out of the training set, seeded: `fraction` in (0, 1) or `count` samples. Stratified,
// each class gives the same share (rounded so the total is exact, largest remainders first), so a small split
// still sees every class. Indices come back ascending, in the data set's own order.
//
//   const auto s = fnn::data::validation_split(labels, {.fraction = 0.1, .stratified = true, .seed = 42});
//   // s.train, s.validation: disjoint, together every index once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/data/batches.hpp"

namespace fnn::data {

struct split_options {
  double fraction = 0;  // of the samples, in (0, 1); or
  index_t count = 0;    // this many samples (exactly one of the two is set)
  bool stratified = false;
  std::uint64_t seed = 0;
};

struct split_indices {
  std::vector<std::int32_t> train, validation;
};

// "0.1" -> fraction, "5000" -> count: the command-line form of a split size.
inline split_options parse_split_size(const std::string& s) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != s.size() || s.empty() || !(v > 0) || !std::isfinite(v) || (v >= 1 && v != std::floor(v)))
    throw value_error("a validation size is a fraction in (0, 1) or a whole count >= 1, got \"" + s.substr(0, 40) + "\"");
  split_options o;
  if (v < 1) o.fraction = v;
  else o.count = index_t(v);
  return o;
}

inline split_indices validation_split(std::span<const std::int32_t> labels, const split_options& o) {
  const auto n = index_t(labels.size());
  if ((o.fraction > 0) == (o.count > 0) || !(o.fraction >= 0 && o.fraction < 1) || o.count < 0)
    throw value_error("validation_split: set exactly one of fraction (in (0, 1)) and count (>= 1), got fraction " +
                      std::to_string(o.fraction) + ", count " + std::to_string(o.count));
  const index_t k = o.count > 0 ? o.count : index_t(std::llround(o.fraction * double(n)));
  if (k < 1 || k >= n)
    throw value_error("validation_split: " + std::to_string(k) + " validation samples of " + std::to_string(n) +
                      ": both parts must keep at least one sample");
  std::mt19937_64 rng(splitmix64(o.seed ^ 0x5A17ull));
  std::vector<char> held(labels.size(), 0);
  if (!o.stratified) {
    const auto order = shuffled_indices(n, rng);
    for (index_t i = 0; i < k; ++i) held[std::size_t(order[std::size_t(i)])] = 1;
  } else {
    std::map<std::int32_t, std::vector<std::int32_t>> by_class;
    for (std::size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(std::int32_t(i));
    struct share {
      std::int32_t label;
      index_t take;
      double remainder;
    };
    std::vector<share> shares;
    index_t taken = 0;
    for (const auto& [label, members] : by_class) {
      const double exact = double(k) * double(members.size()) / double(n);
      shares.push_back({label, index_t(std::floor(exact)), exact - std::floor(exact)});
      taken += shares.back().take;
    }
    std::stable_sort(shares.begin(), shares.end(), [](const share& a, const share& b) { return a.remainder > b.remainder; });
    for (std::size_t i = 0; taken < k; i = (i + 1) % shares.size())
      if (shares[i].take < index_t(by_class[shares[i].label].size())) ++shares[i].take, ++taken;
    std::sort(shares.begin(), shares.end(), [](const share& a, const share& b) { return a.label < b.label; });
    for (const auto& s : shares) {
      const auto& members = by_class[s.label];
      const auto order = shuffled_indices(index_t(members.size()), rng);
      for (index_t i = 0; i < s.take; ++i) held[std::size_t(members[std::size_t(order[std::size_t(i)])])] = 1;
    }
  }
  split_indices out;
  for (std::size_t i = 0; i < held.size(); ++i) (held[i] ? out.validation : out.train).push_back(std::int32_t(i));
  return out;
}

}  // namespace fnn::data
