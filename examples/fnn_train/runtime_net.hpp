#pragma once
// Inference for a network fnn-eval knows only from a checkpoint: the layer list comes from the metadata
// "fnn.layers" (fnn::layers_text, network/describe.hpp), the values from the state_dict tensors. Plain loops in
// double over the reference formulas (eval mode: batch norm on running statistics, dropout is the identity);
// the activations are the library's own scalar functions. Slow next to the fused typed network, but it runs any
// architecture whose layers fnn has.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/io/safetensors.hpp"
#include "fnn/layers/activations.hpp"

namespace fnn_train {

class runtime_net final {
 public:
  // Throws fnn::io_error / shape_error naming the file, the layer and the tensor when the text and the tensors
  // do not describe one network.
  runtime_net(const fnn::io::safetensors_file& file, const std::string& layers) {
    std::size_t index = 0, expected_in = 0;
    std::stringstream list(layers);
    std::string entry;
    while (std::getline(list, entry, ';')) {
      layer l = parse(file, entry, index);
      if (index > 0 && l.in != expected_in)
        fail(file, index, "takes " + std::to_string(l.in) + " features, the layer before it produces " +
                              std::to_string(expected_in));
      expected_in = l.out;
      layers_.push_back(std::move(l));
      ++index;
    }
    if (layers_.empty()) throw fnn::io_error(file.path.string() + ": \"fnn.layers\" lists no layers");
    std::size_t used = 0;
    for (const auto& l : layers_) used += l.tensors;
    if (used != file.tensors.size())
      throw fnn::io_error(file.path.string() + ": holds " + std::to_string(file.tensors.size()) +
                          " tensors, its \"fnn.layers\" accounts for " + std::to_string(used));
  }

  std::size_t in_features() const { return layers_.front().in; }
  std::size_t out_features() const { return layers_.back().out; }

  // Logits of `rows` samples of in_features() floats each.
  std::vector<float> infer(const float* x, std::size_t rows) const {
    std::vector<double> a(x, x + rows * in_features()), b;
    for (const auto& l : layers_) {
      b.assign(rows * l.out, 0.0);
      for (std::size_t r = 0; r < rows; ++r) l.run(&a[r * l.in], &b[r * l.out]);
      a.swap(b);
    }
    return std::vector<float>(a.begin(), a.end());
  }

 private:
  struct layer {
    std::size_t in = 0, out = 0, tensors = 0;
    std::function<void(const double*, double*)> run;
  };

  [[noreturn]] static void fail(const fnn::io::safetensors_file& f, std::size_t i, const std::string& what) {
    throw fnn::io_error(f.path.string() + ": layer " + std::to_string(i) + " of \"fnn.layers\" " + what);
  }

  static std::vector<double> tensor(const fnn::io::safetensors_file& f, std::size_t i, const std::string& name,
                                    std::vector<std::int64_t> shape) {
    const auto v = f.values<float>(std::to_string(i) + "." + name, shape);  // checks dtype and shape
    return std::vector<double>(v.begin(), v.end());
  }

  static layer parse(const fnn::io::safetensors_file& f, const std::string& entry, std::size_t i) {
    std::istringstream in(entry);
    std::string name;
    long long fin = 0, fout = 0;
    if (!(in >> name >> fin >> fout) || fin <= 0 || fout <= 0 || fin > (1 << 24) || fout > (1 << 24))
      fail(f, i, "must read \"<name> <in> <out> [key=value ...]\", got \"" + entry.substr(0, 60) + "\"");
    std::map<std::string, double> opt;
    for (std::string kv; in >> kv;) {
      const auto eq = kv.find('=');
      char* end = nullptr;
      const double v = eq == std::string::npos ? 0 : std::strtod(kv.c_str() + eq + 1, &end);
      if (eq == std::string::npos || end == kv.c_str() + eq + 1 || *end != '\0' || !std::isfinite(v))
        fail(f, i, "has a malformed option \"" + kv + "\"");
      opt[kv.substr(0, eq)] = v;
    }
    const auto n = std::size_t(fin), m = std::size_t(fout);
    const auto option = [&](const std::string& k, double fallback) {
      const auto it = opt.find(k);
      return it == opt.end() ? fallback : it->second;
    };
    layer l{n, m, 0, {}};
    if (name != "dense" && name != "maxout" && n != m) fail(f, i, "(" + name + ") must keep its width");
    if (name == "dense") {
      const bool bias = option("bias", 1) != 0;
      auto w = tensor(f, i, "weight", {fout, fin});
      auto b = bias ? tensor(f, i, "bias", {fout}) : std::vector<double>(m, 0.0);
      l.tensors = bias ? 2 : 1;
      l.run = [w = std::move(w), b = std::move(b), n, m](const double* x, double* y) {
        for (std::size_t o = 0; o < m; ++o) {
          double s = b[o];
          for (std::size_t k = 0; k < n; ++k) s += w[o * n + k] * x[k];
          y[o] = s;
        }
      };
    } else if (name == "batch_norm") {
      auto g = tensor(f, i, "weight", {fin}), be = tensor(f, i, "bias", {fin});
      auto mu = tensor(f, i, "running_mean", {fin}), var = tensor(f, i, "running_var", {fin});
      (void)f.at(std::to_string(i) + ".num_batches_tracked");
      l.tensors = 5;
      for (std::size_t j = 0; j < n; ++j) {  // y = x * s + t
        const double s = g[j] / std::sqrt(var[j] + 1e-5);
        be[j] -= mu[j] * s;
        g[j] = s;
      }
      l.run = [s = std::move(g), t = std::move(be), n](const double* x, double* y) {
        for (std::size_t j = 0; j < n; ++j) y[j] = x[j] * s[j] + t[j];
      };
    } else if (name == "layer_norm") {
      auto g = tensor(f, i, "weight", {fin}), be = tensor(f, i, "bias", {fin});
      l.tensors = 2;
      l.run = [g = std::move(g), be = std::move(be), n](const double* x, double* y) {
        double mean = 0, m2 = 0;
        for (std::size_t j = 0; j < n; ++j) mean += x[j];
        mean /= double(n);
        for (std::size_t j = 0; j < n; ++j) m2 += (x[j] - mean) * (x[j] - mean);
        const double r = 1.0 / std::sqrt(m2 / double(n) + 1e-5);
        for (std::size_t j = 0; j < n; ++j) y[j] = (x[j] - mean) * r * g[j] + be[j];
      };
    } else if (name == "group_norm") {  // torch.nn.GroupNorm(groups, C), eps 1e-5
      const double groups_value = option("groups", 0);
      const auto groups = std::size_t(groups_value);
      if (groups_value < 1 || double(groups) != groups_value || n % groups != 0)
        fail(f, i, "(group_norm) needs groups=G dividing its " + std::to_string(n) + " features");
      auto g = tensor(f, i, "weight", {fin}), be = tensor(f, i, "bias", {fin});
      l.tensors = 2;
      l.run = [g = std::move(g), be = std::move(be), n, size = n / groups](const double* x, double* y) {
        for (std::size_t j0 = 0; j0 < n; j0 += size) {
          double mean = 0, m2 = 0;
          for (std::size_t j = j0; j < j0 + size; ++j) mean += x[j];
          mean /= double(size);
          for (std::size_t j = j0; j < j0 + size; ++j) m2 += (x[j] - mean) * (x[j] - mean);
          const double r = 1.0 / std::sqrt(m2 / double(size) + 1e-5);
          for (std::size_t j = j0; j < j0 + size; ++j) y[j] = (x[j] - mean) * r * g[j] + be[j];
        }
      };
    } else if (name == "prelu") {
      const double a = tensor(f, i, "weight", {1})[0];
      l.tensors = 1;
      l.run = [a, n](const double* x, double* y) {
        for (std::size_t j = 0; j < n; ++j) y[j] = x[j] > 0 || std::isnan(x[j]) ? x[j] : a * x[j];
      };
    } else if (name == "maxout") {
      const auto pieces = std::size_t(option("pieces", 0));
      if (pieces == 0 || n != m * pieces) fail(f, i, "(maxout) needs pieces=in/out");
      l.run = [pieces, m](const double* x, double* y) {
        for (std::size_t o = 0; o < m; ++o) y[o] = *std::max_element(x + o * pieces, x + (o + 1) * pieces);
      };
    } else if (name == "dropout") {
      l.run = [n](const double* x, double* y) { std::copy(x, x + n, y); };
    } else if (name == "leaky_relu" || name == "elu") {
      const double a = name == "elu" ? option("alpha", 1.0) : option("slope", 0.01);
      const bool elu = name == "elu";
      l.run = [a, elu, n](const double* x, double* y) {
        for (std::size_t j = 0; j < n; ++j) y[j] = x[j] > 0 || std::isnan(x[j]) ? x[j] : elu ? a * std::expm1(x[j]) : a * x[j];
      };
    } else {
      double (*fn)(const double&) = nullptr;
      if (name == "relu") fn = &fnn::act::relu_fn::f<double>;
      if (name == "sigmoid") fn = &fnn::act::sigmoid_fn::f<double>;
      if (name == "tanh") fn = &fnn::act::tanh_fn::f<double>;
      if (name == "selu") fn = &fnn::act::selu_fn::f<double>;
      if (name == "gelu") fn = &fnn::act::gelu_fn::f<double>;
      if (name == "gelu_tanh") fn = &fnn::act::gelu_tanh_fn::f<double>;
      if (name == "swish") fn = &fnn::act::swish_fn::f<double>;
      if (fn == nullptr) fail(f, i, "names an unknown layer \"" + name + "\"");
      l.run = [fn, n](const double* x, double* y) {
        for (std::size_t j = 0; j < n; ++j) y[j] = fn(x[j]);
      };
    }
    return l;
  }

  std::vector<layer> layers_;
};

}  // namespace fnn_train
