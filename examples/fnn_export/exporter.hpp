#pragma once
// fnn-export's work, as functions the tests call directly: a safetensors checkpoint (fnn's, or a PyTorch
// nn.Sequential state_dict) plus its layer list ("fnn.layers" in the metadata, fnn::layers_text, or a spec given
// on the command line) -> one C++ header holding the deploy model type and its weights as an `inline constexpr`
// object (hex-float literals: every float round-trips exactly). The lowering is freeze()'s (deploy/freeze.hpp):
// dropout disappears, a dense layer takes the batch norm and then the activation after it, the fold is
// deploy/fold.hpp's, so the header and a run-time freeze of the same weights hold the same bits.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/deploy/fold.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/io/safetensors.hpp"

namespace fnn_export {

// One entry of a layer list: "<name> <in> <out> [key=value ...]".
struct layer_entry {
  std::size_t index = 0;
  std::string name;
  std::size_t in = 0, out = 0;
  std::map<std::string, double> options;
  double option(const std::string& key, double fallback) const {
    const auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
  }
};

inline const std::map<std::string, std::set<std::string>>& known_layers() {
  static const std::map<std::string, std::set<std::string>> k = {
      {"dense", {"bias"}}, {"batch_norm", {}}, {"layer_norm", {}}, {"group_norm", {"groups"}}, {"prelu", {}},
      {"maxout", {"pieces"}}, {"dropout", {"p"}}, {"relu", {}}, {"leaky_relu", {"slope"}}, {"elu", {"alpha"}},
      {"selu", {}}, {"sigmoid", {}}, {"tanh", {}}, {"gelu", {}}, {"gelu_tanh", {}}, {"swish", {}}};
  return k;
}

inline bool is_activation(const std::string& n) {
  return n == "relu" || n == "leaky_relu" || n == "elu" || n == "selu" || n == "sigmoid" || n == "tanh" ||
         n == "gelu" || n == "gelu_tanh" || n == "swish";
}

// Parses and checks a layer list; `where` names its source in errors.
inline std::vector<layer_entry> parse_layers(const std::string& text, const std::string& where) {
  std::vector<layer_entry> out;
  std::stringstream list(text);
  std::string item;
  const auto fail = [&](std::size_t i, const std::string& what) {
    throw fnn::value_error(where + ": layer " + std::to_string(i) + " " + what);
  };
  while (std::getline(list, item, ';')) {
    const std::size_t i = out.size();
    std::istringstream in(item);
    layer_entry e;
    e.index = i;
    long long a = 0, b = 0;
    if (!(in >> e.name >> a >> b) || a <= 0 || b <= 0 || a > (1 << 24) || b > (1 << 24))
      fail(i, "must read \"<name> <in> <out> [key=value ...]\", got \"" + item.substr(0, 60) + "\"");
    e.in = std::size_t(a), e.out = std::size_t(b);
    const auto known = known_layers().find(e.name);
    if (known == known_layers().end()) fail(i, "names an unknown layer \"" + e.name + "\"");
    for (std::string kv; in >> kv;) {
      const auto eq = kv.find('=');
      char* end = nullptr;
      const double v = eq == std::string::npos ? 0 : std::strtod(kv.c_str() + eq + 1, &end);
      if (eq == std::string::npos || end == kv.c_str() + eq + 1 || *end != '\0' || !std::isfinite(v))
        fail(i, "has a malformed option \"" + kv + "\"");
      if (!known->second.count(kv.substr(0, eq)))
        fail(i, "(" + e.name + ") has no option \"" + kv.substr(0, eq) + "\"");
      e.options[kv.substr(0, eq)] = v;
    }
    if (e.name != "dense" && e.name != "maxout" && e.in != e.out)
      fail(i, "(" + e.name + ") must keep its width, got " + std::to_string(e.in) + " -> " + std::to_string(e.out));
    if (e.name == "maxout") {
      const double p = e.option("pieces", 0);
      if (p < 1 || p != std::floor(p) || e.in != e.out * std::size_t(p))
        fail(i, "(maxout " + std::to_string(e.in) + " -> " + std::to_string(e.out) + ") needs pieces=in/out");
    }
    if (e.name == "group_norm") {  // no default: torch.nn.GroupNorm has none, and a guess would mis-normalize
      const double g = e.option("groups", 0);
      if (g < 1 || g != std::floor(g) || e.in % std::size_t(g) != 0)
        fail(i, "(group_norm " + std::to_string(e.in) + ") needs groups=G, a divisor of " + std::to_string(e.in));
    }
    if (i > 0 && e.in != out.back().out)
      fail(i, "(" + e.name + ") takes " + std::to_string(e.in) + " features, layer " + std::to_string(i - 1) +
                  " gives " + std::to_string(out.back().out));
    out.push_back(std::move(e));
  }
  if (out.empty()) throw fnn::value_error(where + ": the layer list is empty");
  return out;
}

// The tensors a layer list needs, named and shaped as the state_dict of the nn.Sequential it describes.
inline std::vector<fnn::io::tensor_spec> expected_tensors(const std::vector<layer_entry>& layers) {
  using fnn::io::dtype;
  std::vector<fnn::io::tensor_spec> s;
  for (const auto& l : layers) {
    const std::string p = std::to_string(l.index) + ".";
    const auto in = std::int64_t(l.in), out = std::int64_t(l.out);
    if (l.name == "dense") {
      s.push_back({p + "weight", dtype::f32, {out, in}});
      if (l.option("bias", 1) != 0) s.push_back({p + "bias", dtype::f32, {out}});
    } else if (l.name == "batch_norm") {
      for (const char* n : {"weight", "bias", "running_mean", "running_var"}) s.push_back({p + n, dtype::f32, {in}});
      s.push_back({p + "num_batches_tracked", dtype::i64, {}});
    } else if (l.name == "layer_norm" || l.name == "group_norm") {
      s.push_back({p + "weight", dtype::f32, {in}});
      s.push_back({p + "bias", dtype::f32, {in}});
    } else if (l.name == "prelu") {
      s.push_back({p + "weight", dtype::f32, {1}});
    }
  }
  return s;
}

// An exact C++ literal: hex-float, so the compiler reads back the same bits.
inline std::string hex_float(float v, const std::string& what) {
  if (!std::isfinite(v)) throw fnn::value_error(what + " is not finite (" + std::to_string(v) + ")");
  char b[48];
  std::snprintf(b, sizeof b, "%af", double(v));
  return b;
}
inline std::string hex_double(double v) {
  char b[48];
  std::snprintf(b, sizeof b, "%a", v);
  return b;
}

inline std::string activation_type(const layer_entry& l) {
  const std::string ns = "fnn::deploy::act::";
  if (l.name == "leaky_relu") return ns + "leaky_relu<" + hex_double(l.option("slope", 0.01)) + ">";
  if (l.name == "elu") return ns + "elu<" + hex_double(l.option("alpha", 1.0)) + ">";
  return ns + l.name;
}

// One deploy layer: its type and the initializer of its params.
struct deploy_layer {
  std::string type, comment, init;
  std::size_t parameters = 0, out = 0;
};

inline std::string array_init(const std::vector<float>& v, const std::string& what) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    s += (i % 8 == 0 ? "\n      " : " ") + hex_float(v[i], what + "[" + std::to_string(i) + "]");
    if (i + 1 < v.size()) s += ",";
  }
  return s + "}";
}

inline std::vector<deploy_layer> lower(const fnn::io::safetensors_file& f, const std::vector<layer_entry>& all) {
  std::vector<layer_entry> kept;
  for (const auto& l : all)
    if (l.name != "dropout") kept.push_back(l);
  const auto values = [&](const layer_entry& l, const char* n, std::vector<std::int64_t> shape) {
    return f.values<float>(std::to_string(l.index) + "." + n, shape);
  };
  std::vector<deploy_layer> out;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const layer_entry& l = kept[i];
    const auto F = std::int64_t(l.in);
    const std::string at = "layer " + std::to_string(l.index);
    deploy_layer d;
    d.out = l.out;
    if (l.name == "dense") {
      const bool bias = l.option("bias", 1) != 0;
      auto w = values(l, "weight", {std::int64_t(l.out), F});
      std::vector<float> b = bias ? values(l, "bias", {std::int64_t(l.out)}) : std::vector<float>(l.out, 0.0f);
      std::string act = "", how = "dense " + std::to_string(l.in) + " -> " + std::to_string(l.out) + " (" + at;
      if (i + 1 < kept.size() && kept[i + 1].name == "batch_norm") {
        const layer_entry& bn = kept[++i];
        const auto G = std::int64_t(l.out);
        const auto g = values(bn, "weight", {G}), be = values(bn, "bias", {G}), mu = values(bn, "running_mean", {G}),
                   var = values(bn, "running_var", {G});
        std::vector<float> fw(w.size()), fb(l.out);
        fnn::deploy::fold_dense_batch_norm<float>(l.in, l.out, w.data(), bias ? b.data() : nullptr, g.data(), be.data(),
                                                  mu.data(), var.data(), fw.data(), fb.data());
        w.swap(fw), b.swap(fb);
        how += ", batch norm " + std::to_string(bn.index) + " folded";
      }
      if (i + 1 < kept.size() && is_activation(kept[i + 1].name)) {
        const layer_entry& a = kept[++i];
        act = ", " + activation_type(a);
        how += ", " + a.name + " " + std::to_string(a.index);
      }
      d.type = "fnn::deploy::dense<" + std::to_string(l.in) + ", " + std::to_string(l.out) + act + ">";
      d.comment = how + ")";
      d.init = "{" + array_init(w, at + " weight") + ",\n    " + array_init(b, at + " bias") + "}";
      d.parameters = w.size() + b.size();
    } else if (l.name == "batch_norm") {
      const auto g = values(l, "weight", {F}), be = values(l, "bias", {F}), mu = values(l, "running_mean", {F}),
                 var = values(l, "running_var", {F});
      std::vector<float> s(l.in), t(l.in);
      fnn::deploy::fold_batch_norm<float>(l.in, g.data(), be.data(), mu.data(), var.data(), s.data(), t.data());
      d.type = "fnn::deploy::scale_shift<" + std::to_string(l.in) + ">";
      d.comment = "batch norm (" + at + ") as scale and shift";
      d.init = "{" + array_init(s, at + " scale") + ",\n    " + array_init(t, at + " shift") + "}";
      d.parameters = 2 * l.in;
    } else if (l.name == "layer_norm") {
      d.type = "fnn::deploy::layer_norm<" + std::to_string(l.in) + ">";
      d.comment = "layer norm (" + at + ")";
      d.init = "{" + array_init(values(l, "weight", {F}), at + " weight") + ",\n    " +
               array_init(values(l, "bias", {F}), at + " bias") + "}";
      d.parameters = 2 * l.in;
    } else if (l.name == "group_norm") {
      const std::string groups = std::to_string(std::size_t(l.option("groups", 1)));
      d.type = "fnn::deploy::group_norm<" + std::to_string(l.in) + ", " + groups + ">";
      d.comment = "group norm, " + groups + " groups (" + at + ")";
      d.init = "{" + array_init(values(l, "weight", {F}), at + " weight") + ",\n    " +
               array_init(values(l, "bias", {F}), at + " bias") + "}";
      d.parameters = 2 * l.in;
    } else if (l.name == "prelu") {
      d.type = "fnn::deploy::prelu<" + std::to_string(l.in) + ">";
      d.comment = "prelu (" + at + ")";
      d.init = "{" + hex_float(values(l, "weight", {1})[0], at + " weight") + "}";
      d.parameters = 1;
    } else if (l.name == "maxout") {
      d.type = "fnn::deploy::maxout<" + std::to_string(l.in) + ", " + std::to_string(l.in / l.out) + ">";
      d.comment = "maxout (" + at + ")";
      d.init = "{}";
    } else {  // an activation with no dense layer before it
      d.type = "fnn::deploy::activation<" + std::to_string(l.in) + ", " + activation_type(l) + ">";
      d.comment = l.name + " (" + at + ")";
      d.init = "{}";
    }
    out.push_back(std::move(d));
  }
  return out;
}

struct options {
  std::string layers;  // empty: the checkpoint's "fnn.layers"
  std::string name_space = "fnn_model";
  std::size_t batch = 1;
  // --int8 (int8_exporter.hpp): post-training quantization, calibrated on calibration_images training images of
  // the MNIST-format directory calibration_data drawn with `seed`, or on calibration_rows (row-major, in-process).
  bool int8 = false;
  std::string calibration_data;
  std::size_t calibration_images = 1000;
  std::uint64_t seed = 42;
  std::vector<float> calibration_rows;
};

inline void check_options(const options& o) {
  if (o.batch == 0 || o.batch > 65536) throw fnn::value_error("--batch must be in [1, 65536]");
  for (char c : o.name_space)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':'))
      throw fnn::value_error("--namespace \"" + o.name_space + "\" is not a C++ namespace name");
}

// The whole header. Deterministic: it depends on the tensors, the layer list and the options only (the
// checkpoint is named by its file name, not its path).
inline std::string export_header(const fnn::io::safetensors_file& f, const options& o) {
  std::string text = o.layers;
  std::string where = f.path.string() + " (--layers)";
  if (text.empty()) {
    const auto it = f.metadata.find("fnn.layers");
    if (it == f.metadata.end())
      throw fnn::value_error(f.path.string() +
                             ": no \"fnn.layers\" in __metadata__ (fnn-train writes it); give "
                             "the layer list with --layers \"dense 784 256; batch_norm 256 256; ...\"");
    text = it->second;
    where = f.path.string() + " (\"fnn.layers\")";
  }
  check_options(o);
  const auto layers = parse_layers(text, where);
  fnn::io::detail::check_specs(f.path, expected_tensors(layers), fnn::io::detail::specs_of(f), "checkpoint");
  const auto deployed = lower(f, layers);

  std::size_t params = 0;
  for (const auto& d : deployed) params += d.parameters;
  std::string h = "// Generated by fnn-export from " + f.path.filename().string() + "; do not edit.\n";
  h += "// Layers: " + text + "\n";
  h += "// " + std::to_string(deployed.size()) + " deploy layers, " + std::to_string(params) + " parameters (" +
       std::to_string(params * 4) + " bytes of weights), static batch " + std::to_string(o.batch) + ".\n";
  h += "#pragma once\n#include \"fnn/deploy/model.hpp\"\n\nnamespace " + o.name_space + " {\n\n";
  h += "using model_type = fnn::deploy::model<fnn::deploy::static_batch<" + std::to_string(o.batch) + ">";
  for (const auto& d : deployed) h += ",\n    " + d.type;
  h += ">;\nstatic_assert(model_type::parameter_count == " + std::to_string(params) + ");\n\n";
  h += "// The weights as exact hex-float literals; constexpr puts them in flash / .rodata.\n";
  h += "inline constexpr model_type model{";
  for (std::size_t i = 0; i < deployed.size(); ++i)
    h += "{\n  // " + std::to_string(i) + ": " + deployed[i].comment + "\n  " + deployed[i].init + ",\n";
  h += "  {}" + std::string(deployed.size(), '}') + "};\n\n}  // namespace " + o.name_space + "\n";
  return h;
}

}  // namespace fnn_export
