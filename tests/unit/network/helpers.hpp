#pragma once
// Shared by the network tests: random data and a minimal SGD (the optimizer suite is tested in
// tests/unit/optim; here only the network's side of the contract matters).
#include <cstdint>
#include <random>
#include <vector>

#include "fnn/core/parameter.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn_test {

template <class T>
fnn::matrix<T> random_matrix(fnn::index_t rows, fnn::index_t cols, std::uint32_t seed, double scale = 1.0) {
  fnn::matrix<T> m(rows, cols);
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, scale);
  for (T& v : m.flat()) v = T(d(g));
  return m;
}

inline std::vector<std::int32_t> random_labels(std::size_t n, int classes, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> d(0, classes - 1);
  std::vector<std::int32_t> l(n);
  for (auto& v : l) v = d(g);
  return l;
}

struct plain_sgd {
  double lr = 0.1;
  template <class Net>
  void step(Net& net) {
    net.for_each_parameter([&](auto& p) {
      for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= decltype(p.value[i] + 0)(lr) * p.grad[i];
    });
  }
};

// Everything a failed call must leave untouched: parameters, gradients, buffers.
template <class Net>
std::vector<double> snapshot(Net& net) {
  std::vector<double> s;
  net.for_each_parameter([&](auto& p) {
    s.insert(s.end(), p.value.begin(), p.value.end());
    s.insert(s.end(), p.grad.begin(), p.grad.end());
  });
  net.for_each_buffer([&](auto& b) {
    if (b.counter) s.push_back(double(*b.counter));
    else s.insert(s.end(), b.value.begin(), b.value.end());
  });
  return s;
}

}  // namespace fnn_test
