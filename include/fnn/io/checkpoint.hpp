#pragma once
// Checkpoints: a network's parameters and buffers, and an optimizer's state, as safetensors files.
//
//   fnn::io::save_model("model.safetensors", net, {{"epoch", "3"}});
//   fnn::io::load_model("model.safetensors", net);   // checks every name, dtype and shape first
//   fnn::io::save_optimizer("optimizer.safetensors", net, opt, meta);
//   fnn::io::load_optimizer("optimizer.safetensors", net, opt);
//
// Model tensors are named and shaped as PyTorch's nn.Sequential state_dict ("0.weight" [out, in] F32,
// "1.num_batches_tracked" I64 rank 0, ...), so torch can load them with load_state_dict. Templated on
// anything with for_each_parameter / for_each_buffer (parameter_ref / buffer_ref), so io/ does not depend
// on network/. Loading is all-or-nothing: the file is read and checked completely before any value changes.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/parameter.hpp"
#include "fnn/io/safetensors.hpp"
#include "fnn/io/safetensors_read.hpp"
#include "fnn/io/safetensors_write.hpp"

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

// Optimizer state tensors are "<parameter name>.<state name>" ("0.weight.exp_avg"); the step count goes to
// the metadata as "step" (plus whatever the caller adds).
template <class Net, class Opt>
void save_optimizer(const std::filesystem::path& path, Net& net, Opt& opt, metadata meta = {}) {
  using T = typename Net::value_type;
  const auto names = detail::parameter_names<T>(net);
  std::vector<tensor_entry> tensors;
  opt.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    if (std::size_t(i) >= names.size())
      throw shape_error("optimizer state for parameter " + std::to_string(i) + " but the network has " +
                        std::to_string(names.size()) + " parameter arrays");
    tensors.push_back(make_tensor<T>(names[std::size_t(i)] + "." + std::string(state), {std::int64_t(s.size())},
                                     std::span<const T>(s)));
  });
  meta["step"] = std::to_string(opt.step_count());
  write_safetensors(path, tensors, meta);
}

// Prepares the optimizer's state for the network and fills it from the file (all-or-nothing); sets the step
// count from the metadata. Returns the metadata.
template <class Net, class Opt>
metadata load_optimizer(const std::filesystem::path& path, Net& net, Opt& opt) {
  using T = typename Net::value_type;
  const safetensors_file file = read_safetensors(path);
  const auto names = detail::parameter_names<T>(net);
  Opt probe = opt;  // the expected layout, without touching opt until the file is known to fit
  probe.prepare(net);
  std::vector<tensor_spec> expected;
  probe.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    expected.push_back({names[std::size_t(i)] + "." + std::string(state), dtype_of<T>, {std::int64_t(s.size())}});
  });
  detail::check_specs(file.path, expected, detail::specs_of(file), "optimizer state");
  const auto step = file.metadata.find("step");
  std::int64_t steps = 0;
  try {
    if (step == file.metadata.end()) throw value_error("");
    std::size_t used = 0;
    steps = std::stoll(step->second, &used);
    if (used != step->second.size() || steps < 0) throw value_error("");
  } catch (const std::exception&) {
    throw io_error(path.string() + ": __metadata__ needs \"step\", a non-negative integer");
  }
  opt.prepare(net);
  opt.for_each_state([&](index_t i, std::string_view state, std::span<T> s) {
    const auto v = tensor_values<T>(file.at(names[std::size_t(i)] + "." + std::string(state)));
    std::copy(v.begin(), v.end(), s.begin());
  });
  opt.set_step_count(steps);
  return file.metadata;
}

}  // namespace fnn::io
