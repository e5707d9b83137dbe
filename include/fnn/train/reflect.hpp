#pragma once
// Hyper-parameters as data: option structs reflected with Boost.Hana's struct adaptation, so that ONE generic
// piece of code writes any of them into checkpoint metadata ("<prefix>.<field>"), reads them back on resume
// and prints them. This header adapts fnn::optim's option structs (float) and the EMA options; a user adapts
// their own with BOOST_HANA_ADAPT_STRUCT(type, field, ...) at global scope and gets the same three functions.
// Field values go through codec<T> (numbers as the shortest text that reads back exactly), which a user may
// specialize for their own field types.
//
//   fnn::io::metadata m;
//   fnn::train::write_options(m, "optimizer", opt.options());      // "optimizer.lr" = "0.001", ...
//   fnn::train::read_options(path, m, "optimizer", opt.options()); // missing keys keep their value
//   std::puts(fnn::train::describe_options(opt.options()).c_str());// "lr=0.001 betas=0.9,0.999 ..."
#include <boost/hana/accessors.hpp>
#include <boost/hana/adapt_struct.hpp>
#include <boost/hana/first.hpp>
#include <boost/hana/for_each.hpp>
#include <boost/hana/second.hpp>
#include <boost/hana/string.hpp>

#include <array>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/io/safetensors.hpp"
#include "fnn/optim/adagrad.hpp"
#include "fnn/optim/adam.hpp"
#include "fnn/optim/ema.hpp"
#include "fnn/optim/rmsprop.hpp"
#include "fnn/optim/sgd.hpp"

namespace fnn::train {

// Text form of one option value. from_text returns false for a value that is not of the type.
template <class T, class = void>
struct codec;

template <class T>
struct codec<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  // The shortest text that reads back to the same value ("0.001" for 1e-3f, not "0.00100000005").
  static std::string to_text(T v) {
    char b[48];
    const auto r = std::to_chars(b, b + sizeof b, v);
    return std::string(b, r.ptr);
  }
  static bool from_text(const std::string& s, T& v) {
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(d)) return false;
    if (std::is_same_v<T, float> && std::abs(d) > double(std::numeric_limits<float>::max())) return false;
    v = T(d);
    return true;
  }
};

template <>
struct codec<bool> {
  static std::string to_text(bool v) { return v ? "true" : "false"; }
  static bool from_text(const std::string& s, bool& v) {
    if (s == "true" || s == "1") return v = true, true;
    if (s == "false" || s == "0") return v = false, true;
    return false;
  }
};

template <class T>
struct codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static std::string to_text(T v) { return std::to_string(v); }
  static bool from_text(const std::string& s, T& v) {
    char* end = nullptr;
    errno = 0;
    if (s.empty() || (std::is_unsigned_v<T> && s[0] == '-')) return false;
    if constexpr (std::is_unsigned_v<T>) {
      const unsigned long long u = std::strtoull(s.c_str(), &end, 10);
      if (*end != '\0' || errno == ERANGE || u > std::numeric_limits<T>::max()) return false;
      v = T(u);
    } else {
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (*end != '\0' || errno == ERANGE || i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
        return false;
      v = T(i);
    }
    return true;
  }
};

template <>
struct codec<std::string> {
  static std::string to_text(const std::string& v) { return v; }
  static bool from_text(const std::string& s, std::string& v) { return v = s, true; }
};

template <>
struct codec<std::filesystem::path> {
  static std::string to_text(const std::filesystem::path& v) { return v.string(); }
  static bool from_text(const std::string& s, std::filesystem::path& v) { return v = s, true; }
};

template <class T, std::size_t N>
struct codec<std::array<T, N>> {
  static std::string to_text(const std::array<T, N>& v) {
    std::string s;
    for (std::size_t i = 0; i < N; ++i) s += (i ? "," : "") + codec<T>::to_text(v[i]);
    return s;
  }
  static bool from_text(const std::string& s, std::array<T, N>& v) {
    std::array<T, N> out{};
    std::size_t at = 0;
    for (std::size_t i = 0; i < N; ++i) {
      const std::size_t end = i + 1 < N ? s.find(',', at) : s.size();
      if (end == std::string::npos || !codec<T>::from_text(s.substr(at, end - at), out[i])) return false;
      at = end + 1;
    }
    if (at != s.size() + 1) return false;
    v = out;
    return true;
  }
};

template <>
struct codec<optim::decay_policy> {
  static std::string to_text(optim::decay_policy v) { return v == optim::decay_policy::all ? "all" : "weights_only"; }
  static bool from_text(const std::string& s, optim::decay_policy& v) {
    if (s == "all") return v = optim::decay_policy::all, true;
    if (s == "weights_only") return v = optim::decay_policy::weights_only, true;
    return false;
  }
};

// Calls f(name, field&) for every field of an adapted struct, in declaration order.
template <class S, class F>
void for_each_option(S& s, F&& f) {
  boost::hana::for_each(boost::hana::accessors<std::remove_const_t<S>>(), [&](auto pair) {
    f(boost::hana::to<const char*>(boost::hana::first(pair)), boost::hana::second(pair)(s));
  });
}

template <class S>
void write_options(io::metadata& m, const std::string& prefix, const S& s) {
  for_each_option(s, [&](const char* name, const auto& v) {
    m[prefix + "." + name] = codec<std::decay_t<decltype(v)>>::to_text(v);
  });
}

// Fields whose key is missing keep their value (a checkpoint of an older version); a present value that does
// not parse is an io_error naming the file and the key. All-or-nothing: s changes only if every value parses.
template <class S>
void read_options(const std::filesystem::path& file, const io::metadata& m, const std::string& prefix, S& s) {
  S out = s;
  for_each_option(out, [&](const char* name, auto& v) {
    const auto it = m.find(prefix + "." + name);
    if (it != m.end() && !codec<std::decay_t<decltype(v)>>::from_text(it->second, v))
      throw io_error(file.string() + ": __metadata__ \"" + prefix + "." + name + "\" has a bad value \"" +
                     it->second.substr(0, 40) + "\"");
  });
  s = out;
}

// Sets one field by name from text (a command line's "--set lr=0.1"); false for an unknown name, value_error
// for a value of the wrong type.
template <class S>
bool set_option(S& s, const std::string& name, const std::string& value) {
  bool found = false;
  for_each_option(s, [&](const char* n, auto& v) {
    if (name != n) return;
    found = true;
    if (!codec<std::decay_t<decltype(v)>>::from_text(value, v))
      throw value_error("option " + name + ": bad value \"" + value.substr(0, 40) + "\"");
  });
  return found;
}

template <class S>
std::vector<std::string> option_names() {
  std::vector<std::string> out;
  S s{};
  for_each_option(s, [&](const char* n, auto&) { out.emplace_back(n); });
  return out;
}

// "name=value name=value ..." on one line.
template <class S>
std::string describe_options(const S& s) {
  std::string out;
  for_each_option(s, [&](const char* name, const auto& v) {
    out += (out.empty() ? "" : " ") + std::string(name) + "=" + codec<std::decay_t<decltype(v)>>::to_text(v);
  });
  return out;
}

namespace reflected {
using sgd_options = optim::sgd_options<float>;
using adam_options = optim::adam_options<float, false>;
using adamw_options = optim::adam_options<float, true>;
using rmsprop_options = optim::rmsprop_options<float>;
using adagrad_options = optim::adagrad_options<float>;
using ema_options = optim::ema_options<float>;
}  // namespace reflected

}  // namespace fnn::train

// Every field, in declaration order: a field added to an options struct must be added here too.
BOOST_HANA_ADAPT_STRUCT(fnn::train::reflected::sgd_options, lr, momentum, dampening, weight_decay, nesterov, maximize,
                        l1, max_grad_norm, clip_value, decay);
BOOST_HANA_ADAPT_STRUCT(fnn::train::reflected::adam_options, lr, betas, eps, weight_decay, amsgrad, maximize, l1,
                        max_grad_norm, clip_value, decay);
BOOST_HANA_ADAPT_STRUCT(fnn::train::reflected::adamw_options, lr, betas, eps, weight_decay, amsgrad, maximize, l1,
                        max_grad_norm, clip_value, decay);
BOOST_HANA_ADAPT_STRUCT(fnn::train::reflected::rmsprop_options, lr, alpha, eps, weight_decay, momentum, centered,
                        maximize, l1, max_grad_norm, clip_value, decay);
BOOST_HANA_ADAPT_STRUCT(fnn::train::reflected::adagrad_options, lr, lr_decay, weight_decay, initial_accumulator_value,
                        eps, maximize, l1, max_grad_norm, clip_value, decay);
BOOST_HANA_ADAPT_STRUCT(fnn::train::reflected::ema_options, decay, warmup);
