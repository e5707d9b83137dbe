#pragma once
// Run-time errors. Every message starts with "fnn:" and names the offending numbers.
#include <stdexcept>
#include <string>

namespace fnn {

// A run-time size disagrees with what the network or a kernel expects (dynamic batch, wrong width, ...).
class shape_error final : public std::invalid_argument {
 public:
  explicit shape_error(const std::string& what) : std::invalid_argument("fnn: " + what) {}
};

// A value is out of its domain (label out of range, negative learning rate, ...).
class value_error final : public std::invalid_argument {
 public:
  explicit value_error(const std::string& what) : std::invalid_argument("fnn: " + what) {}
};

// Reading or writing a file failed; the message names the file and, where known, the byte offset.
class io_error final : public std::runtime_error {
 public:
  explicit io_error(const std::string& what) : std::runtime_error("fnn: " + what) {}
};

}  // namespace fnn
