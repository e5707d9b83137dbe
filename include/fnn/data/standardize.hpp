#pragma once
// Per-feature standardization, x' = (x - mean) / std, with statistics of the TRAINING set only (applying
// statistics of the validation or test set to themselves leaks them into the model). The statistics travel with
// the model as checkpoint metadata, "<prefix>.mean" / "<prefix>.std" (comma-separated, exact as %.9g), so a
// model file is complete on its own; fnn-train writes prefix "fnn.standardize".
//
//   auto s = fnn::data::standardizer::fit(train_x.view(), {.min_std = 0.05});
//   s.apply(batch.view());
//   s.write_metadata(meta);                                   // before io::save_model(path, net, meta)
//   auto back = fnn::data::standardizer::read_metadata(path, file.metadata);   // std::optional
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"
#include "fnn/io/safetensors.hpp"

namespace fnn::data {

struct standardize_options {
  // Floor of the standard deviation: a feature that is almost constant on the training set (an image border)
  // must not turn a faint value of another set into a huge input. A zero spread with floor 0 divides by 1.
  double min_std = 0.0;
};

class standardizer final {
 public:
  std::vector<float> mean, std;

  // Statistics of `n` rows of `features` values, each row written by row_of(i, float* dst) in order. Two
  // passes in double (mean, then centred squares): a plain float sum of squares cancels catastrophically.
  template <class RowOf>
  static standardizer fit(index_t n, index_t features, RowOf&& row_of, standardize_options o = {}) {
    if (n < 1 || features < 1)
      throw value_error("standardizer::fit: needs at least one row and one feature, got " + std::to_string(n) +
                        " x " + std::to_string(features));
    const auto f = std::size_t(features);
    std::vector<double> m(f, 0.0), m2(f, 0.0);
    std::vector<float> row(f);
    for (index_t i = 0; i < n; ++i) {
      row_of(i, row.data());
      for (std::size_t j = 0; j < f; ++j) m[j] += row[j];
    }
    for (auto& v : m) v /= double(n);
    for (index_t i = 0; i < n; ++i) {
      row_of(i, row.data());
      for (std::size_t j = 0; j < f; ++j) {
        const double d = row[j] - m[j];
        m2[j] += d * d;
      }
    }
    standardizer s;
    for (std::size_t j = 0; j < f; ++j) {
      const double sd = std::max(std::sqrt(m2[j] / double(n)), o.min_std);
      s.mean.push_back(float(m[j]));
      s.std.push_back(float(sd > 0 ? sd : 1.0));
    }
    return s;
  }
  static standardizer fit(const_matrix_view<float> x, standardize_options o = {}) {
    return fit(x.rows(), x.cols(), [&](index_t i, float* dst) { std::copy(x.row(i), x.row(i) + x.cols(), dst); }, o);
  }

  index_t features() const noexcept { return index_t(mean.size()); }

  void apply(matrix_view<float> x) const {
    if (x.cols() != features())
      throw shape_error("standardizer: fitted on " + std::to_string(features()) + " features, got a batch of " +
                        std::to_string(x.cols()));
    for (index_t i = 0; i < x.rows(); ++i) {
      float* r = x.row(i);
      for (std::size_t j = 0; j < mean.size(); ++j) r[j] = (r[j] - mean[j]) / std[j];
    }
  }

  void write_metadata(io::metadata& m, const std::string& prefix = "fnn.standardize") const {
    m[prefix + ".mean"] = to_text(mean);
    m[prefix + ".std"] = to_text(std);
  }
  // The statistics a file's metadata holds, none if it has neither key; `features` > 0 checks the count.
  static std::optional<standardizer> read_metadata(const std::filesystem::path& file, const io::metadata& m,
                                                   index_t features = 0,
                                                   const std::string& prefix = "fnn.standardize") {
    const auto mk = prefix + ".mean", sk = prefix + ".std";
    if (!m.count(mk) && !m.count(sk)) return std::nullopt;
    if (!m.count(mk) || !m.count(sk))
      throw io_error(file.string() + ": __metadata__ has only one of " + mk + " / .std");
    standardizer s{from_text(file, mk, m.at(mk), false), from_text(file, sk, m.at(sk), true)};
    if (s.mean.size() != s.std.size() || (features > 0 && s.mean.size() != std::size_t(features)))
      throw io_error(file.string() + ": __metadata__ \"" + mk + "\" / .std hold " + std::to_string(s.mean.size()) +
                     " / " + std::to_string(s.std.size()) + " numbers, expected " +
                     std::to_string(features > 0 ? features : index_t(s.mean.size())));
    return s;
  }

  static std::string to_text(const std::vector<float>& v) {
    std::string s;
    char b[32];
    for (float x : v) {
      std::snprintf(b, sizeof b, "%s%.9g", s.empty() ? "" : ",", double(x));
      s += b;
    }
    return s;
  }
  static std::vector<float> from_text(const std::filesystem::path& file, const std::string& key, const std::string& s,
                                      bool positive) {
    std::vector<float> v;
    for (std::size_t at = 0; at <= s.size() && !s.empty();) {
      const std::size_t end = std::min(s.find(',', at), s.size());
      const std::string item = s.substr(at, end - at);
      char* stop = nullptr;
      const float x = std::strtof(item.c_str(), &stop);
      if (item.empty() || *stop != '\0' || !std::isfinite(x) || (positive && !(x > 0)))
        throw io_error(file.string() + ": __metadata__ \"" + key + "\" item " + std::to_string(v.size()) +
                       " is not a valid number: \"" + item.substr(0, 30) + "\"");
      v.push_back(x);
      at = end + 1;
    }
    return v;
  }
};

}  // namespace fnn::data
