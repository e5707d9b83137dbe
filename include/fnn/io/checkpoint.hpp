#pragma once
// Checkpoints: a network's parameters and buffers, and an optimizer's state, as safetensors files.
//
//   fnn::io::save_model("model.safetensors", net, {{"epoch", "3"}});
//   fnn::io::load_model("model.safetensors", net);   // checks every name, dtype and shape first
//   fnn::io::save_optimizer("optimizer.safetensors", net, opt, meta);
//   fnn::io::load_optimizer("optimizer.safetensors", net, opt);
//   fnn::io::save_training_state("state.safetensors", net, opt, meta);   // both in one file, checksummed
//   fnn::io::load_training_state("state.safetensors", net, opt);
//
// Model tensors are named and shaped as PyTorch's nn.Sequential state_dict ("0.weight" [out, in] F32,
// "1.num_batches_tracked" I64 rank 0, ...), so torch can load them with load_state_dict. Templated on
// anything with for_each_parameter / for_each_buffer (parameter_ref / buffer_ref), so io/ does not depend
// on network/. Loading is all-or-nothing: the file is read and checked completely before any value changes.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <system_error>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/parameter.hpp"
#include "fnn/io/safetensors.hpp"
#include "fnn/io/safetensors_read.hpp"
#include "fnn/io/safetensors_write.hpp"

#include <zlib.h>

namespace fnn::io {

// What a tensor of a checkpoint must look like.
struct tensor_spec {
  std::string name;
  dtype type = dtype::f32;
  std::vector<std::int64_t> shape;

  std::string text() const { return name + " " + std::string(dtype_name(type)) + " " + shape_text(shape); }
  bool operator==(const tensor_spec&) const = default;
};

namespace detail {

template <class T>
std::vector<std::int64_t> parameter_shape(const parameter_ref<T>& p) {
  if (p.rank == 2) return {std::int64_t(p.shape[0]), std::int64_t(p.shape[1])};
  return {std::int64_t(p.value.size())};
}
template <class T>
std::vector<std::int64_t> buffer_shape(const buffer_ref<T>& b) {
  if (b.counter != nullptr) return {};
  return {std::int64_t(b.value.size())};
}

inline std::string spec_list(const std::vector<tensor_spec>& specs) {
  std::string s;
  for (const auto& t : specs) s += "\n    " + t.text();
  return s.empty() ? "\n    (none)" : s;
}

// Throws shape_error naming every difference, then the full expected and found lists.
inline void check_specs(const std::filesystem::path& path, const std::vector<tensor_spec>& expected,
                        const std::vector<tensor_spec>& found, std::string_view what) {
  std::string diff;
  for (const auto& e : expected) {
    const tensor_spec* f = nullptr;
    for (const auto& c : found)
      if (c.name == e.name) f = &c;
    if (f == nullptr) diff += "\n    missing: " + e.text();
    else if (!(*f == e)) diff += "\n    differs: expected " + e.text() + ", found " + f->text();
  }
  for (const auto& f : found) {
    bool known = false;
    for (const auto& e : expected) known = known || e.name == f.name;
    if (!known) diff += "\n    unexpected: " + f.text();
  }
  if (diff.empty()) return;
  throw shape_error(path.string() + ": the " + std::string(what) + " does not match this network:" + diff +
                    "\n  expected:" + spec_list(expected) + "\n  found:" + spec_list(found));
}

inline std::vector<tensor_spec> specs_of(const safetensors_file& f) {
  std::vector<tensor_spec> out;
  for (const auto& t : f.tensors) out.push_back({t.name, t.type, t.shape});
  return out;
}

template <class T, class Net>
std::vector<std::string> parameter_names(Net& net) {
  std::vector<std::string> names;
  net.for_each_parameter([&](parameter_ref<T>& p) { names.push_back(p.name()); });
  return names;
}

}  // namespace detail

// The tensors a network's checkpoint holds, in state_dict order (per layer: parameters, then buffers).
template <class Net>
std::vector<tensor_spec> model_specs(Net& net) {
  using T = typename Net::value_type;
  std::vector<tensor_spec> out;
  net.for_each_parameter([&](parameter_ref<T>& p) { out.push_back({p.name(), dtype_of<T>, detail::parameter_shape(p)}); });
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter != nullptr) out.push_back({b.name(), dtype::i64, {}});
    else out.push_back({b.name(), dtype_of<T>, detail::buffer_shape(b)});
  });
  return out;
}

template <class Net>
std::vector<tensor_entry> model_tensors(Net& net) {
  using T = typename Net::value_type;
  std::vector<tensor_entry> out;
  net.for_each_parameter([&](parameter_ref<T>& p) {
    out.push_back(make_tensor<T>(p.name(), detail::parameter_shape(p), std::span<const T>(p.value)));
  });
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter != nullptr)
      out.push_back(make_tensor<std::int64_t>(b.name(), {}, std::span<const std::int64_t>(b.counter, 1)));
    else
      out.push_back(make_tensor<T>(b.name(), detail::buffer_shape(b), std::span<const T>(b.value)));
  });
  return out;
}

// Writes the network atomically (temporary file + fsync + rename).
template <class Net>
void save_model(const std::filesystem::path& path, Net& net, const metadata& meta = {}) {
  const auto tensors = model_tensors(net);
  write_safetensors(path, tensors, meta);
}

// Copies an already read file into the network; throws (changing nothing) unless the file holds exactly
// the network's tensors with their dtypes and shapes.
template <class Net>
void load_model(const safetensors_file& file, Net& net) {
  using T = typename Net::value_type;
  detail::check_specs(file.path, model_specs(net), detail::specs_of(file), "checkpoint");
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter == nullptr) return;
    const auto n = tensor_values<std::int64_t>(file.at(b.name()))[0];
    if (n < 0) throw io_error(file.path.string() + ": '" + b.name() + "' is " + std::to_string(n) + ", a count must be >= 0");
  });
  net.for_each_parameter([&](parameter_ref<T>& p) {
    const auto v = tensor_values<T>(file.at(p.name()));
    std::copy(v.begin(), v.end(), p.value.begin());
  });
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter != nullptr) {
      *b.counter = tensor_values<std::int64_t>(file.at(b.name()))[0];
    } else {
      const auto v = tensor_values<T>(file.at(b.name()));
      std::copy(v.begin(), v.end(), b.value.begin());
    }
  });
}

// Reads a checkpoint into the network; returns the file's metadata.
template <class Net>
metadata load_model(const std::filesystem::path& path, Net& net) {
  const safetensors_file file = read_safetensors(path);
  load_model(file, net);
  return file.metadata;
}

// Which part of a checkpoint load_model_part copies into a network (transfer learning):
//   layers   the file's layers [0, layers) into the network's: every tensor "<i>.<suffix>" with i < layers
//            (parameters and buffers, e.g. batch-norm statistics), by its own name;
//   tensors  tensors by name, {file name, network name}: {"4.weight", "0.weight"} loads the file's 4.weight
//            into the network's 0.weight.
// Both may be given. The network's other tensors are left as they are.
struct model_part {
  std::size_t layers = 0;
  std::vector<std::pair<std::string, std::string>> tensors = {};
};

namespace detail {

// The layer index a state_dict name starts with ("12.weight" -> 12); npos for any other name.
inline std::size_t module_of(std::string_view name) {
  std::size_t i = 0, v = 0;
  while (i < name.size() && i < 9 && name[i] >= '0' && name[i] <= '9') v = v * 10 + std::size_t(name[i++] - '0');
  return i > 0 && i < name.size() && name[i] == '.' ? v : std::string_view::npos;
}

inline const tensor_spec* find_spec(const std::vector<tensor_spec>& specs, std::string_view name) {
  for (const auto& s : specs)
    if (s.name == name) return &s;
  return nullptr;
}

// The {file name, network name} pairs `part` loads; throws shape_error naming every tensor that is missing,
// unexpected (in the prefix layers), of another dtype or shape, unknown to a mapping, or loaded twice.
inline std::vector<std::pair<std::string, std::string>> part_pairs(const std::filesystem::path& path,
                                                                   const std::vector<tensor_spec>& expected,
                                                                   const std::vector<tensor_spec>& found,
                                                                   const model_part& part, std::size_t layer_count) {
  if (part.layers == 0 && part.tensors.empty())
    throw value_error(path.string() + ": load_model_part was given no layers and no tensors to load");
  std::vector<std::pair<std::string, std::string>> pairs;
  std::string diff;
  auto add = [&](const std::string& from, const std::string& to) {
    for (const auto& [f, t] : pairs)
      if (t == to) {
        diff += "\n    loaded twice: " + to + " (from " + f + " and from " + from + ")";
        return;
      }
    pairs.emplace_back(from, to);
  };
  if (part.layers > layer_count)
    diff += "\n    the part has layers [0, " + std::to_string(part.layers) + "), the network only " +
            std::to_string(layer_count);
  for (const auto& e : expected) {
    if (module_of(e.name) >= part.layers) continue;
    const tensor_spec* f = find_spec(found, e.name);
    if (f == nullptr) diff += "\n    missing: " + e.text();
    else if (!(*f == e)) diff += "\n    differs: expected " + e.text() + ", found " + f->text();
    else add(e.name, e.name);
  }
  for (const auto& f : found)
    if (module_of(f.name) < part.layers && find_spec(expected, f.name) == nullptr)
      diff += "\n    unexpected: " + f.text();
  for (const auto& [from, to] : part.tensors) {
    const tensor_spec* f = find_spec(found, from);
    const tensor_spec* e = find_spec(expected, to);
    if (f == nullptr) diff += "\n    not in the file: " + from + " (mapped to " + to + ")";
    if (e == nullptr) diff += "\n    not in the network: " + to + " (mapped from " + from + ")";
    if (f == nullptr || e == nullptr) continue;
    if (f->type != e->type || f->shape != e->shape)
      diff += "\n    differs: " + from + " -> " + to + ": expected " + e->text() + ", found " + f->text();
    else add(from, to);
  }
  if (!diff.empty())
    throw shape_error(path.string() + ": the part of the checkpoint to load does not match this network:" + diff);
  return pairs;
}

}  // namespace detail

// Copies part of an already read checkpoint into the network (see model_part); returns the network names it
// loaded, in model_specs order. Everything it loads is checked first, as strictly as load_model checks a whole
// file (name, dtype, shape; a count must be >= 0), and nothing changes unless all of it is right.
template <class Net>
std::vector<std::string> load_model_part(const safetensors_file& file, Net& net, const model_part& part) {
  using T = typename Net::value_type;
  std::size_t layer_count = std::string_view::npos;
  if constexpr (requires { Net::layer_count; }) layer_count = Net::layer_count;
  const auto pairs = detail::part_pairs(file.path, model_specs(net), detail::specs_of(file), part, layer_count);
  auto source = [&](const std::string& to) -> const tensor_entry* {
    for (const auto& [from, t] : pairs)
      if (t == to) return &file.at(from);
    return nullptr;
  };
  net.for_each_buffer([&](buffer_ref<T>& b) {
    const tensor_entry* t = b.counter ? source(b.name()) : nullptr;
    if (t == nullptr) return;
    const auto n = tensor_values<std::int64_t>(*t)[0];
    if (n < 0)
      throw io_error(file.path.string() + ": '" + t->name + "' is " + std::to_string(n) + ", a count must be >= 0");
  });
  std::vector<std::string> loaded;
  net.for_each_parameter([&](parameter_ref<T>& p) {
    if (const tensor_entry* t = source(p.name())) {
      const auto v = tensor_values<T>(*t);
      std::copy(v.begin(), v.end(), p.value.begin());
      loaded.push_back(p.name());
    }
  });
  net.for_each_buffer([&](buffer_ref<T>& b) {
    const tensor_entry* t = source(b.name());
    if (t == nullptr) return;
    if (b.counter != nullptr) {
      *b.counter = tensor_values<std::int64_t>(*t)[0];
    } else {
      const auto v = tensor_values<T>(*t);
      std::copy(v.begin(), v.end(), b.value.begin());
    }
    loaded.push_back(b.name());
  });
  return loaded;
}

// Reads a checkpoint and loads part of it into the network (see model_part).
template <class Net>
std::vector<std::string> load_model_part(const std::filesystem::path& path, Net& net, const model_part& part) {
  return load_model_part(read_safetensors(path), net, part);
}

// A metadata value that must be an integer in [lo, hi]: parsed strictly (decimal digits with an optional
// leading '-', nothing else), so "3x", " 3", "" or 2^63 are refused with the file and the key named instead of
// being read as 3, 0 or an overflow.
inline std::int64_t metadata_integer(const std::filesystem::path& path, const metadata& meta, const std::string& key,
                                     std::int64_t lo, std::int64_t hi) {
  const auto it = meta.find(key);
  const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  if (it == meta.end()) throw io_error(path.string() + ": __metadata__ has no \"" + key + "\" (" + range + ")");
  const std::string& text = it->second;
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc{} || ptr != end || v < lo || v > hi)
    throw io_error(path.string() + ": __metadata__ \"" + key + "\" must be " + range + ", got \"" +
                   (text.size() > 40 ? text.substr(0, 40) + "..." : text) + "\"");
  return v;
}

namespace detail {

inline constexpr std::int64_t max_step_count = std::int64_t(1) << 53;

template <class Net, class Opt>
std::vector<tensor_entry> optimizer_tensors(Net& net, Opt& opt, const std::string& prefix) {
  using T = typename Net::value_type;
  const auto names = parameter_names<T>(net);
  std::vector<tensor_entry> tensors;
  opt.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    if (std::size_t(i) >= names.size())
      throw shape_error("optimizer state for parameter " + std::to_string(i) + " but the network has " +
                        std::to_string(names.size()) + " parameter arrays");
    tensors.push_back(make_tensor<T>(prefix + names[std::size_t(i)] + "." + std::string(state),
                                     {std::int64_t(s.size())}, std::span<const T>(s)));
  });
  return tensors;
}

// Checks that the file holds exactly the state `opt` needs for `net` and a valid "step"; changes nothing.
template <class Net, class Opt>
std::int64_t check_optimizer_file(const safetensors_file& file, Net& net, const Opt& opt) {
  using T = typename Net::value_type;
  const auto names = parameter_names<T>(net);
  Opt probe = opt;  // the expected layout, without touching opt
  probe.prepare(net);
  std::vector<tensor_spec> expected;
  probe.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    expected.push_back({names[std::size_t(i)] + "." + std::string(state), dtype_of<T>, {std::int64_t(s.size())}});
  });
  check_specs(file.path, expected, specs_of(file), "optimizer state");
  return metadata_integer(file.path, file.metadata, "step", 0, max_step_count);
}

template <class Net, class Opt>
void copy_optimizer_state(const safetensors_file& file, Net& net, Opt& opt, std::int64_t steps) {
  using T = typename Net::value_type;
  const auto names = parameter_names<T>(net);
  opt.prepare(net);
  opt.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    const auto v = tensor_values<T>(file.at(names[std::size_t(i)] + "." + std::string(state)));
    std::copy(v.begin(), v.end(), s.begin());
  });
  opt.set_step_count(steps);
}

// The tensors whose names start with prefix, renamed without it (a view of one part of a training state).
inline safetensors_file part_of(const safetensors_file& file, std::string_view prefix) {
  safetensors_file out{file.path, {}, file.metadata};
  for (const auto& t : file.tensors)
    if (std::string_view(t.name).substr(0, prefix.size()) == prefix) {
      out.tensors.push_back(t);
      out.tensors.back().name.erase(0, prefix.size());
    }
  return out;
}

inline constexpr const char* content_crc32_key = "fnn.content_crc32";

// CRC-32 over every tensor's name and bytes, in name order (independent of the header's order), and over every
// metadata key and value but the checksum's own.
inline std::uint32_t content_crc32(const std::vector<tensor_entry>& tensors, const metadata& meta) {
  std::vector<const tensor_entry*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->name < b->name; });
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (const auto* t : order) {
    crc = ::crc32_z(crc, reinterpret_cast<const Bytef*>(t->name.data()), t->name.size() + 1);  // with its '\0'
    crc = ::crc32_z(crc, reinterpret_cast<const Bytef*>(t->bytes.data()), t->bytes.size());
  }
  for (const auto& [k, v] : meta) {  // std::map: in key order
    if (k == content_crc32_key) continue;
    crc = ::crc32_z(crc, reinterpret_cast<const Bytef*>(k.data()), k.size() + 1);
    crc = ::crc32_z(crc, reinterpret_cast<const Bytef*>(v.data()), v.size() + 1);
  }
  return static_cast<std::uint32_t>(crc);
}

inline std::string hex32(std::uint32_t v) {
  char s[9];
  std::snprintf(s, sizeof s, "%08x", v);
  return s;
}

template <class T>
bool all_finite(std::span<const T> v) {
  for (const T x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace detail

// Optimizer state tensors are "<parameter name>.<state name>" ("0.weight.exp_avg"); the step count goes to
// the metadata as "step" (plus whatever the caller adds).
template <class Net, class Opt>
void save_optimizer(const std::filesystem::path& path, Net& net, Opt& opt, metadata meta = {}) {
  const auto tensors = detail::optimizer_tensors(net, opt, "");
  meta["step"] = std::to_string(opt.step_count());
  write_safetensors(path, tensors, meta);
}

// Prepares the optimizer's state for the network and fills it from the file (all-or-nothing); sets the step
// count from the metadata. Returns the metadata.
template <class Net, class Opt>
metadata load_optimizer(const std::filesystem::path& path, Net& net, Opt& opt) {
  const safetensors_file file = read_safetensors(path);
  const std::int64_t steps = detail::check_optimizer_file(file, net, opt);
  detail::copy_optimizer_state(file, net, opt, steps);
  return file.metadata;
}

// A training state: everything a resume needs in ONE file, so that a crash at any point leaves either the
// previous state or the new one (a single atomic rename), never a model of one step with the optimizer of
// another. Tensors "model.<state_dict name>" and "optimizer.<parameter>.<state>"; metadata: the caller's, plus
// "step" and "fnn.content_crc32" (over every tensor and every other metadata entry), which load_training_state checks.
// `extra`: more state of the caller's (e.g. the weight average of fnn::optim::ema), in the same commit; each name
// gets the prefix "extra.", and load_training_state checks their checksum and finiteness but leaves them to
// the caller (in file.tensors).
template <class Net, class Opt>
void save_training_state(const std::filesystem::path& path, Net& net, Opt& opt, metadata meta = {},
                         std::vector<tensor_entry> extra = {}) {
  auto tensors = model_tensors(net);
  for (auto& t : tensors) t.name.insert(0, "model.");
  auto state = detail::optimizer_tensors(net, opt, "optimizer.");
  tensors.insert(tensors.end(), std::make_move_iterator(state.begin()), std::make_move_iterator(state.end()));
  for (auto& t : extra) t.name.insert(0, "extra.");
  tensors.insert(tensors.end(), std::make_move_iterator(extra.begin()), std::make_move_iterator(extra.end()));
  meta["step"] = std::to_string(opt.step_count());
  meta[detail::content_crc32_key] = detail::hex32(detail::content_crc32(tensors, meta));
  write_safetensors(path, tensors, meta);
}

// Reads a training state into the network and the optimizer, all-or-nothing: the checksum, every tensor's
// name/dtype/shape, the step, and the finiteness of every value are checked before anything changes.
template <class Net, class Opt>
metadata load_training_state(const safetensors_file& file, Net& net, Opt& opt) {
  const std::filesystem::path& path = file.path;
  const auto crc = file.metadata.find(detail::content_crc32_key);
  if (crc == file.metadata.end())
    throw io_error(path.string() + ": not a training state (its __metadata__ has no \"fnn.content_crc32\")");
  const std::string actual = detail::hex32(detail::content_crc32(file.tensors, file.metadata));
  if (crc->second != actual)
    throw io_error(path.string() + ": content checksum mismatch (recorded " + crc->second + ", computed " + actual +
                   "): the file is damaged");
  for (const auto& t : file.tensors)
    if ((t.type == dtype::f32 && !detail::all_finite(std::span<const float>(tensor_values<float>(t)))) ||
        (t.type == dtype::f64 && !detail::all_finite(std::span<const double>(tensor_values<double>(t)))))
      throw io_error(path.string() + ": tensor '" + t.name + "' holds NaN or infinite values");
  const safetensors_file model = detail::part_of(file, "model.");
  const safetensors_file state = detail::part_of(file, "optimizer.");
  for (const auto& t : file.tensors)
    if (t.name.rfind("model.", 0) != 0 && t.name.rfind("optimizer.", 0) != 0 && t.name.rfind("extra.", 0) != 0)
      throw shape_error(path.string() + ": unexpected tensor '" + t.name +
                        "' in a training state (names start with \"model.\", \"optimizer.\" or \"extra.\")");
  const std::int64_t steps = detail::check_optimizer_file(state, net, opt);
  load_model(model, net);  // checks the model tensors before it copies them; nothing below can fail
  detail::copy_optimizer_state(state, net, opt, steps);
  return file.metadata;
}
template <class Net, class Opt>
metadata load_training_state(const std::filesystem::path& path, Net& net, Opt& opt) {
  return load_training_state(read_safetensors(path), net, opt);
}

// The first parameter, buffer or optimizer state value that is NaN or infinite, as "0.weight[17] = nan";
// empty when all are finite. A checkpoint must never hold such a value.
template <class Net, class Opt>
std::string first_non_finite(Net& net, Opt& opt) {
  using T = typename Net::value_type;
  std::string found;
  auto scan = [&](const std::string& name, std::span<const T> v) {
    if (!found.empty()) return;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i])) {
        found = name + "[" + std::to_string(i) + "] = " + (std::isnan(v[i]) ? "nan" : v[i] > 0 ? "inf" : "-inf");
        return;
      }
  };
  net.for_each_parameter([&](parameter_ref<T>& p) { scan(p.name(), std::span<const T>(p.value)); });
  net.for_each_buffer([&](buffer_ref<T>& b) {
    if (b.counter == nullptr) scan(b.name(), std::span<const T>(b.value));
  });
  const auto names = detail::parameter_names<T>(net);
  opt.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    scan("optimizer state " + names[std::size_t(i)] + "." + std::string(state), std::span<const T>(s));
  });
  return found;
}

}  // namespace fnn::io
