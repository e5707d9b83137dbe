#pragma once
// Shared by the deploy tests: a network with every parameter and running statistic random (fresh batch norms
// would fold to the identity and hide a wrong fold), and the comparison with net.infer().
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "fnn/core/parameter.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn_deploy_test {

template <class Net>
void randomize(Net& net, std::uint32_t seed) {
  using T = typename Net::value_type;
  std::mt19937 g(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.5, 2.0);
  net.for_each_parameter([&](fnn::parameter_ref<T>& p) {
    for (T& v : p.value) {
      if (p.kind == fnn::parameter_kind::norm_scale)
        v = T(u(g));
      else if (p.kind == fnn::parameter_kind::activation_parameter)
        v = T(0.1 + 0.3 * u(g));
      else
        v = T(0.4 * n01(g));
    }
  });
  net.for_each_buffer([&](fnn::buffer_ref<T>& b) {
    for (T& v : b.value) v = b.suffix == "running_var" ? T(u(g)) : T(0.5 * n01(g));
  });
}

template <class T>
std::vector<T> random_input(std::size_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<T> v(n);
  for (T& x : v) x = T(d(g));
  return v;
}

// Deploy output vs net.infer() on the same rows: float tolerance, relative to the size of the value (the
// network's GEMM sums in another order, and its activations use xsimd's vectorized exp/erfc).
template <class T>
void check_close(const std::vector<float>& got, fnn::const_matrix_view<T> want, double tol = 2e-5) {
  BOOST_REQUIRE_EQUAL(got.size(), std::size_t(want.size()));
  for (fnn::index_t r = 0; r < want.rows(); ++r)
    for (fnn::index_t c = 0; c < want.cols(); ++c) {
      const double a = got[std::size_t(r * want.cols() + c)], b = double(want(r, c));
      BOOST_TEST_CONTEXT("row " << r << " column " << c << ": deploy " << a << ", infer " << b) {
        BOOST_TEST(std::abs(a - b) <= tol * (1.0 + std::abs(b)));
      }
    }
}
template <class T>
void check_close(const std::vector<float>& got, const fnn::matrix<T>& want, double tol = 2e-5) {
  check_close(got, want.view(), tol);
}

}  // namespace fnn_deploy_test
