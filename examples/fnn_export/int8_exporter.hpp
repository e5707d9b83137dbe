#pragma once
// fnn-export --int8: post-training quantization of a checkpoint into a header for fnn::deploy::int8 (deploy/int8.hpp).
// The float lowering is the float exporter's (batch norm folded into the dense layer before it, dropout gone, the
// activation after a dense layer joined to it); then the float model runs on calibration inputs (N training
// images drawn with a seed, or rows given in-process) and the range of every tensor it observes gives that
// tensor's int8 scale and zero point (deploy/quantize.hpp). A dense layer becomes int8::dense (a ReLU after it
// its clamp); any other activation, and PReLU, becomes a 256-entry int8::lookup table; maxout stays maxout. A
// batch norm with no dense layer before it, layer norm and group norm have no int8 form here and are refused by
// name.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "exporter.hpp"
#include "fnn/deploy/quantize.hpp"
#include "fnn/io/mnist.hpp"

namespace fnn_export {

// The float function of an activation entry, in double (host side: only its 256 table entries reach a device).
inline std::function<double(double)> activation_function(const layer_entry& l) {
  const std::string& n = l.name;
  if (n == "relu") return [](double x) { return x > 0 ? x : 0.0; };
  if (n == "leaky_relu") {
    const double s = l.option("slope", 0.01);
    return [s](double x) { return x > 0 ? x : s * x; };
  }
  if (n == "elu") {
    const double a = l.option("alpha", 1.0);
    return [a](double x) { return x > 0 ? x : a * std::expm1(x); };
  }
  if (n == "selu") {
    constexpr double a = 1.6732632423543772848170429916717, s = 1.0507009873554804934193349852946;
    return [](double x) { return x > 0 ? s * x : s * a * std::expm1(x); };
  }
  if (n == "sigmoid") return [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  if (n == "tanh") return [](double x) { return std::tanh(x); };
  if (n == "gelu") return [](double x) { return 0.5 * x * std::erfc(-x * 0.70710678118654752440); };
  if (n == "gelu_tanh")
    return [](double x) { return 0.5 * x * (1 + std::tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x))); };
  if (n == "swish") return [](double x) { return x / (1.0 + std::exp(-x)); };
  throw fnn::value_error("layer " + std::to_string(l.index) + " (" + n + ") is not an activation");
}

// One layer of the float model as int8 quantization sees it.
struct float_layer {
  enum class kind { dense, activation, maxout } what = kind::dense;
  std::size_t in = 0, out = 0, pieces = 1;
  std::vector<float> w, b;                  // dense: folded [out, in] and [out]
  std::string act;                          // dense: the activation joined to it ("" none); activation: its name
  std::function<double(double)> f;          // the activation's function (none for a plain dense layer)
  std::string how;                          // where it comes from, for the header's comments and errors
};

inline std::vector<float_layer> lower_float(const fnn::io::safetensors_file& file, const std::vector<layer_entry>& all) {
  std::vector<layer_entry> kept;
  for (const auto& l : all)
    if (l.name != "dropout") kept.push_back(l);
  const auto values = [&](const layer_entry& l, const char* n, std::vector<std::int64_t> shape) {
    return file.values<float>(std::to_string(l.index) + "." + n, shape);
  };
  std::vector<float_layer> out;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const layer_entry& l = kept[i];
    const std::string at = "layer " + std::to_string(l.index);
    float_layer d;
    d.in = l.in, d.out = l.out;
    if (l.name == "dense") {
      const bool bias = l.option("bias", 1) != 0;
      d.w = values(l, "weight", {std::int64_t(l.out), std::int64_t(l.in)});
      d.b = bias ? values(l, "bias", {std::int64_t(l.out)}) : std::vector<float>(l.out, 0.0f);
      d.how = "dense " + std::to_string(l.in) + " -> " + std::to_string(l.out) + " (" + at;
      if (i + 1 < kept.size() && kept[i + 1].name == "batch_norm") {
        const layer_entry& bn = kept[++i];
        const auto G = std::int64_t(l.out);
        const auto g = values(bn, "weight", {G}), be = values(bn, "bias", {G}), mu = values(bn, "running_mean", {G}),
                   var = values(bn, "running_var", {G});
        std::vector<float> fw(d.w.size()), fb(l.out);
        fnn::deploy::fold_dense_batch_norm<float>(l.in, l.out, d.w.data(), bias ? d.b.data() : nullptr, g.data(),
                                                  be.data(), mu.data(), var.data(), fw.data(), fb.data());
        d.w.swap(fw), d.b.swap(fb);
        d.how += ", batch norm " + std::to_string(bn.index) + " folded";
      }
      if (i + 1 < kept.size() && is_activation(kept[i + 1].name)) {
        const layer_entry& a = kept[++i];
        d.act = a.name;
        d.f = activation_function(a);
        d.how += ", " + a.name + " " + std::to_string(a.index);
      }
      d.how += ")";
    } else if (is_activation(l.name) || l.name == "prelu") {
      d.what = float_layer::kind::activation;
      d.act = l.name;
      if (l.name == "prelu") {
        const double s = values(l, "weight", {1})[0];
        d.f = [s](double x) { return x > 0 ? x : s * x; };
      } else {
        d.f = activation_function(l);
      }
      d.how = l.name + " (" + at + ")";
    } else if (l.name == "maxout") {
      d.what = float_layer::kind::maxout;
      d.pieces = l.in / l.out;
      d.how = "maxout (" + at + ")";
    } else if (l.name == "batch_norm") {
      throw fnn::value_error(at + " (batch_norm) follows no dense layer: --int8 folds a batch norm into the dense "
                                  "layer before it and has no int8 form for one alone; export this model as float");
    } else {
      throw fnn::value_error(at + " (" + l.name + ") has no int8 form (--int8 quantizes dense, batch_norm after "
                                  "dense, activations, prelu, maxout, dropout); export this model as float");
    }
    out.push_back(std::move(d));
  }
  return out;
}

// The float forward pass of the lowered layers on one row, reporting each tensor to `see(tensor index, value)`:
// tensor 0 is the input; a dense layer with an activation other than ReLU reports its pre-activation too.
template <class See>
void forward(const std::vector<float_layer>& layers, std::vector<double> x, See&& see) {
  std::size_t t = 0;
  for (double v : x) see(t, v);
  for (const auto& l : layers) {
    std::vector<double> y(l.out);
    if (l.what == float_layer::kind::dense) {
      for (std::size_t o = 0; o < l.out; ++o) {
        double s = l.b[o];
        for (std::size_t k = 0; k < l.in; ++k) s += double(l.w[o * l.in + k]) * x[k];
        y[o] = s;
      }
      if (l.f && l.act != "relu") {
        ++t;
        for (double v : y) see(t, v);
      }
      if (l.f)
        for (double& v : y) v = l.f(v);
    } else if (l.what == float_layer::kind::activation) {
      for (std::size_t o = 0; o < l.out; ++o) y[o] = l.f(x[o]);
    } else {
      for (std::size_t o = 0; o < l.out; ++o) {
        y[o] = x[o * l.pieces];
        for (std::size_t q = 1; q < l.pieces; ++q) y[o] = std::max(y[o], x[o * l.pieces + q]);
      }
    }
    ++t;
    for (double v : y) see(t, v);
    x.swap(y);
  }
}

// "a,b,c" of exactly n numbers (the checkpoint's fnn.standardize.* metadata).
inline std::vector<float> numbers(const fnn::io::safetensors_file& f, const std::string& key, std::size_t n) {
  const std::string& s = f.metadata.at(key);
  std::vector<float> v;
  for (std::size_t at = 0; at <= s.size();) {
    const std::size_t end = std::min(s.find(',', at), s.size());
    const std::string item = s.substr(at, end - at);
    char* stop = nullptr;
    const float x = std::strtof(item.c_str(), &stop);
    if (item.empty() || *stop != '\0' || !std::isfinite(x))
      throw fnn::value_error(f.path.string() + ": __metadata__ \"" + key + "\" item " + std::to_string(v.size()) +
                             " is not a number");
    v.push_back(x);
    at = end + 1;
  }
  if (v.size() != n)
    throw fnn::value_error(f.path.string() + ": __metadata__ \"" + key + "\" holds " + std::to_string(v.size()) +
                           " numbers, the model takes " + std::to_string(n));
  return v;
}

// The calibration rows: options.calibration_rows, or N training images of an MNIST-format directory drawn
// without replacement by a seeded Fisher-Yates shuffle (std::mt19937_64's output is fixed by the standard, so
// the draw is the same with every standard library), preprocessed as the model was trained: pixel / 255, then
// (x - mean) / std if the checkpoint carries fnn.standardize.* (fnn-train --standardize).
inline std::vector<std::vector<double>> calibration_rows(const fnn::io::safetensors_file& f, const options& o,
                                                         std::size_t in, std::string& described) {
  std::vector<std::vector<double>> rows;
  if (!o.calibration_rows.empty()) {
    if (o.calibration_rows.size() % in != 0)
      throw fnn::value_error("calibration rows: " + std::to_string(o.calibration_rows.size()) +
                             " values are not whole rows of " + std::to_string(in));
    for (std::size_t r = 0; r < o.calibration_rows.size() / in; ++r)
      rows.emplace_back(o.calibration_rows.begin() + std::ptrdiff_t(r * in),
                        o.calibration_rows.begin() + std::ptrdiff_t((r + 1) * in));
    described = std::to_string(rows.size()) + " rows given in-process";
    return rows;
  }
  if (o.calibration_data.empty())
    throw fnn::value_error("--int8 needs calibration inputs: --calibration-data DIR (an MNIST-format directory, e.g. "
                           "/usr/share/datasets/fashion-mnist)");
  if (o.calibration_images == 0) throw fnn::value_error("--calibration-images must be at least 1");
  const auto data = fnn::io::load_mnist_bytes(o.calibration_data, fnn::io::split::train);
  const std::size_t pixels = std::size_t(data.rows * data.cols);
  if (pixels != in)
    throw fnn::value_error(o.calibration_data + ": images of " + std::to_string(pixels) + " pixels, the model takes " +
                           std::to_string(in) + " inputs");
  if (o.calibration_images > std::size_t(data.size()))
    throw fnn::value_error("--calibration-images " + std::to_string(o.calibration_images) + " exceeds the " +
                           std::to_string(data.size()) + " training images of " + o.calibration_data);
  std::vector<std::size_t> order(std::size_t(data.size()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(o.seed);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[std::size_t(rng() % i)]);
  const bool standardize = f.metadata.count("fnn.standardize.mean") && f.metadata.count("fnn.standardize.std");
  const auto mean = standardize ? numbers(f, "fnn.standardize.mean", in) : std::vector<float>();
  const auto sd = standardize ? numbers(f, "fnn.standardize.std", in) : std::vector<float>();
  std::vector<float> px(in);
  for (std::size_t r = 0; r < o.calibration_images; ++r) {
    fnn::io::pixels_to_float(data.pixels().row(fnn::index_t(order[r])), in, px.data());
    if (standardize)
      for (std::size_t j = 0; j < in; ++j) px[j] = (px[j] - mean[j]) / sd[j];
    rows.emplace_back(px.begin(), px.end());
  }
  described = std::to_string(rows.size()) + " training images of " +
              std::filesystem::path(o.calibration_data).filename().string() + " (seed " + std::to_string(o.seed) +
              (standardize ? ", standardized" : "") + ")";
  return rows;
}

namespace detail {
template <class T>
std::string int_array(const std::vector<T>& v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    s += (i % 16 == 0 ? "\n      " : " ") + std::to_string(long(v[i]));
    if (i + 1 < v.size()) s += ",";
  }
  return s + "}";
}
inline std::string quantization_init(fnn::deploy::int8::quantization q) {
  return "{" + hex_float(q.scale, "a scale") + ", " + std::to_string(q.zero_point) + "}";
}
inline std::string describe(fnn::deploy::int8::quantization q) {
  char b[64];
  std::snprintf(b, sizeof b, "scale %.6g, zero point %d", double(q.scale), int(q.zero_point));
  return b;
}
}  // namespace detail

// The int8 header: the model type, its weights as constexpr integer arrays, and its input and output
// quantization. Deterministic: the same checkpoint, layer list, options and calibration data give the same bytes.
inline std::string export_int8_header(const fnn::io::safetensors_file& f, const options& o) {
  using fnn::deploy::int8::quantization;
  namespace q8 = fnn::deploy::int8;
  std::string text = o.layers, where = f.path.string() + " (--layers)";
  if (text.empty()) {
    const auto it = f.metadata.find("fnn.layers");
    if (it == f.metadata.end())
      throw fnn::value_error(f.path.string() + ": no \"fnn.layers\" in __metadata__ (fnn-train writes it); give "
                                               "the layer list with --layers \"dense 784 256; batch_norm 256 256; ...\"");
    text = it->second, where = f.path.string() + " (\"fnn.layers\")";
  }
  check_options(o);
  const auto layers = parse_layers(text, where);
  fnn::io::detail::check_specs(f.path, expected_tensors(layers), fnn::io::detail::specs_of(f), "checkpoint");
  const auto lowered = lower_float(f, layers);

  // Calibration: the range of every tensor of the float model.
  std::string calibration;
  const auto rows = calibration_rows(f, o, lowered.front().in, calibration);
  std::vector<q8::range_observer> ranges;
  for (const auto& r : rows)
    forward(lowered, r, [&](std::size_t t, double v) {
      if (t >= ranges.size()) ranges.resize(t + 1);
      ranges[t].observe(v);
    });
  const auto tensor = [&](std::size_t& t, const std::string& what) {
    return q8::choose_activation_quantization(ranges.at(t++), what);
  };

  std::size_t t = 0, params = 0, float_params = 0;
  const quantization input = tensor(t, "the model's input");
  quantization cur = input;
  struct emitted {
    std::string type, comment, init;
  };
  std::vector<emitted> out;
  for (const auto& l : lowered) {
    if (l.what == float_layer::kind::dense) {
      const std::string what = l.how;
      float_params += l.w.size() + l.b.size();
      const bool relu = l.act == "relu", table = l.f && !relu;
      const quantization y = tensor(t, what + (table ? " before its activation" : ""));
      const auto d = q8::quantize_dense(l.w, l.b, l.out, l.in, cur, y, relu, what);
      out.push_back({"fnn::deploy::int8::dense<" + std::to_string(l.in) + ", " + std::to_string(l.out) + ">",
                     what + (relu ? ", relu as the clamp" : "") + (table ? "; pre-activation " : "; output ") +
                         detail::describe(y),
                     "{" + detail::int_array(d.weight) + ",\n    " + detail::int_array(d.bias) + ",\n    " +
                         detail::int_array(d.multiplier) + ",\n    " + detail::int_array(d.shift) + ",\n    " +
                         std::to_string(d.input_zero_point) + ", " + std::to_string(d.output_zero_point) + ", " +
                         std::to_string(d.output_min) + ", " + std::to_string(d.output_max) + "}"});
      params += l.out * l.in + l.out;
      cur = y;
      if (!table) continue;
    }
    if (l.f) {  // a table: the activation after a dense layer, or one alone
      const std::string what = l.what == float_layer::kind::dense ? l.act + " of " + l.how : l.how;
      const quantization y = tensor(t, what);
      std::vector<std::int8_t> tab(256);
      q8::make_table(l.f, cur, y, tab.data(), what);
      out.push_back({"fnn::deploy::int8::lookup<" + std::to_string(l.out) + ">",
                     what + " as a table; output " + detail::describe(y), "{" + detail::int_array(tab) + "}"});
      params += 256;
      cur = y;
    } else if (l.what == float_layer::kind::maxout) {
      ++t;  // same quantization in and out
      out.push_back({"fnn::deploy::int8::maxout<" + std::to_string(l.in) + ", " + std::to_string(l.pieces) + ">",
                     l.how, "{}"});
    }
  }
  const quantization output = cur;

  std::string h = "// Generated by fnn-export --int8 from " + f.path.filename().string() + "; do not edit.\n";
  h += "// Layers: " + text + "\n";
  h += "// Post-training quantization, calibrated on " + calibration + "; per-channel symmetric int8 weights,\n";
  h += "// per-tensor asymmetric int8 activations, int32 biases (TensorFlow Lite's int8 scheme).\n";
  h += "// " + std::to_string(out.size()) + " int8 deploy layers, " + std::to_string(params) +
       " parameters (the float model: " + std::to_string(float_params) + ", " + std::to_string(float_params * 4) +
       " bytes of weights), static batch " + std::to_string(o.batch) + ".\n";
  h += "// Input " + detail::describe(input) + "; output " + detail::describe(output) + ".\n";
  h += "#pragma once\n#include \"fnn/deploy/int8.hpp\"\n\nnamespace " + o.name_space + " {\n\n";
  h += "using model_type = fnn::deploy::int8::model<fnn::deploy::static_batch<" + std::to_string(o.batch) + ">";
  for (const auto& d : out) h += ",\n    " + d.type;
  h += ">;\nstatic_assert(model_type::parameter_count == " + std::to_string(params) + ");\n\n";
  h += "// The integers as constexpr arrays: in flash / .rodata.\n";
  h += "inline constexpr model_type model{\n  " + detail::quantization_init(input) + ",  // input: real = scale * (q - zero point)\n  " +
       detail::quantization_init(output) + ",  // output\n  ";
  for (std::size_t i = 0; i < out.size(); ++i)
    h += "{\n  // " + std::to_string(i) + ": " + out[i].comment + "\n  " + out[i].init + ",\n";
  h += "  {}" + std::string(out.size(), '}') + "};\n\n}  // namespace " + o.name_space + "\n";
  return h;
}

}  // namespace fnn_export
