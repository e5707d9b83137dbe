// fnn::kernels::gemv (Y = X W^T for a few rows, the batch-1 inference product) against the reference GEMM in
// double, for sizes around the SIMD width, the row groups and the k chunks, with padded leading dimensions; the
// epilogue's row/column contract; NaN and infinity propagation; and simd::reduce_add_each, its reduction.
// Built twice, like the GEMM tests: SIMD and FNN_FORCE_SCALAR.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <vector>

#include "fnn/kernels/gemv.hpp"
#include "fnn/layers/activations.hpp"
#include "gemm_test_util.hpp"

namespace {

using fnn::index_t;
using fnn::kernels::transpose;
using fnn::test::padded_matrix;

struct identity {
  template <class V>
  V apply(V v, index_t, index_t) const {
    return v;
  }
};

// Worst error ratio (1 = the GEMM tests' bound) of gemv on an m x k X and n x k W, and whether the padding of Y
// kept its sentinel.
template <class T>
double gemv_case(index_t m, index_t n, index_t k, bool* padding_ok) {
  padded_matrix<T> x(m, k, 3, 1), w(n, k, 5, 2), y(m, n, 2, 3);
  const padded_matrix<T> c0(m, n, 2, 4);
  const fnn::test::gemm_oracle<T> oracle(transpose::no, transpose::yes, m, n, k, T(1), x, w, T(0), y);
  fnn::kernels::gemv(m, n, k, x.data.data(), x.ld, w.data.data(), w.ld, y.data.data(), y.ld, identity{});
  return fnn::test::gemm_error_ratio(y, oracle, k, padding_ok);
}

template <class T>
void check_sizes() {
  // n and k below, at and past the widths (4, 8, 16 lanes) and, for k, past the 16 KB chunk (512 floats on AVX2,
  // 256 on AVX-512); m odd and even (rows go in pairs) and past gemv_group_rows (a second pass over W).
  for (index_t m : {1, 2, 3, 4, 5, 8, 9, 17})
    for (index_t n : {1, 3, 7, 8, 9, 15, 16, 17, 33, 257})
      for (index_t k : {0, 1, 3, 7, 8, 9, 17, 31, 255, 256, 257, 784, 1030}) {
        bool padding_ok = false;
        const double ratio = gemv_case<T>(m, n, k, &padding_ok);
        BOOST_TEST_CONTEXT("m=" << m << " n=" << n << " k=" << k) {
          BOOST_TEST(ratio <= 1.0);
          BOOST_TEST(padding_ok);
        }
      }
}

// Reports every element it sees with its coordinates, so the test can check each is applied once, where it lands.
template <class T>
struct coordinates {
  template <class V>
  V apply(V v, index_t row, index_t col) const {
    constexpr std::size_t lanes = fnn::simd::lanes_v<V>;
    alignas(64) T c[lanes];
    for (std::size_t l = 0; l < lanes; ++l) c[l] = T(1000 * row + col + index_t(l));
    return v + fnn::simd::load_as<V>(c);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(gemv)

BOOST_AUTO_TEST_CASE(matches_the_reference_float) { check_sizes<float>(); }
BOOST_AUTO_TEST_CASE(matches_the_reference_double) { check_sizes<double>(); }

BOOST_AUTO_TEST_CASE(epilogue_sees_each_element_once_with_its_coordinates) {
  for (index_t m : {1, 4, 6})
    for (index_t n : {5, 16, 21}) {
      const index_t k = 13;
      const std::vector<float> x(std::size_t(m * k), 0.f), w(std::size_t(n * k), 1.f);
      std::vector<float> y(std::size_t(m * n), std::numeric_limits<float>::quiet_NaN());
      fnn::kernels::gemv(m, n, k, x.data(), k, w.data(), k, y.data(), n, coordinates<float>{});
      for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) BOOST_TEST(y[std::size_t(i * n + j)] == float(1000 * i + j), i << "," << j);
    }
}

BOOST_AUTO_TEST_CASE(affine_activation_epilogue) {
  // Fn(v * scale + shift) per column, against the reference product and the scalar functor.
  const index_t m = 3, n = 19, k = 40;
  padded_matrix<double> xd(m, k, 0, 7), wd(n, k, 0, 8);
  std::vector<float> x(xd.data.begin(), xd.data.end()), w(wd.data.begin(), wd.data.end()), scale(n), shift(n);
  for (index_t j = 0; j < n; ++j)
    scale[std::size_t(j)] = 0.5f + 0.1f * float(j), shift[std::size_t(j)] = -0.3f + 0.05f * float(j);
  std::vector<float> y(std::size_t(m * n));
  fnn::kernels::gemv(m, n, k, x.data(), k, w.data(), k, y.data(), n,
                     fnn::kernels::affine_activation_epilogue<float, fnn::gelu::function>{scale.data(), shift.data()});
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < n; ++j) {
      double dot = 0;
      for (index_t p = 0; p < k; ++p) dot += double(x[std::size_t(i * k + p)]) * double(w[std::size_t(j * k + p)]);
      const double u = dot * scale[std::size_t(j)] + shift[std::size_t(j)];
      const double expected = 0.5 * u * (1 + std::erf(u / std::sqrt(2.0)));
      BOOST_TEST(std::abs(y[std::size_t(i * n + j)] - expected) < 1e-5 * (1 + std::abs(expected)), i << "," << j);
    }
}

BOOST_AUTO_TEST_CASE(nan_and_infinity_propagate_as_in_a_plain_sum) {
  // k = 37: positions in the vector body and in the k tail; n = 11: full and partial column blocks.
  const index_t m = 3, n = 11, k = 37;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (index_t p : {index_t(2), k - 1}) {
    std::vector<float> x(std::size_t(m * k), 0.5f), w(std::size_t(n * k), 0.25f);
    x[std::size_t(0 * k + p)] = nan;  // row 0: NaN input -> every output of row 0
    x[std::size_t(1 * k + p)] = inf;  // row 1: inf times W(9, p) = 0 below -> NaN there, +inf elsewhere
    w[std::size_t(9 * k + p)] = 0.f;
    w[std::size_t(4 * k + p)] = nan;                // column 4: NaN weight -> column 4 of every row
    std::vector<float> y(std::size_t(m * n), nan);  // never read
    fnn::kernels::gemv(m, n, k, x.data(), k, w.data(), k, y.data(), n, identity{});
    BOOST_TEST_CONTEXT("p=" << p) {
      for (index_t j = 0; j < n; ++j) {
        BOOST_TEST(std::isnan(y[std::size_t(j)]), "row 0 col " << j);
        if (j == 4 || j == 9)
          BOOST_TEST(std::isnan(y[std::size_t(n + j)]), "row 1 col " << j);
        else
          BOOST_TEST(y[std::size_t(n + j)] == inf, "row 1 col " << j);
        if (j == 4)
          BOOST_TEST(std::isnan(y[std::size_t(2 * n + j)]));
        else
          BOOST_TEST(y[std::size_t(2 * n + j)] == 0.5f * 0.25f * float(k - 1) + (j == 9 ? 0.f : 0.125f), j);
      }
    }
    // An activation epilogue keeps the NaN (relu(NaN) is NaN, as in torch).
    const std::vector<float> ones(std::size_t(n), 1.f), zeros(std::size_t(n), 0.f);
    fnn::kernels::gemv(m, n, k, x.data(), k, w.data(), k, y.data(), n,
                       fnn::kernels::affine_activation_epilogue<float, fnn::relu::function>{ones.data(), zeros.data()});
    for (index_t j = 0; j < n; ++j) BOOST_TEST(std::isnan(y[std::size_t(j)]), "relu row 0 col " << j);
  }
}

BOOST_AUTO_TEST_CASE(reduce_add_each_sums_each_register) {
  using V = fnn::kernels::detail::gemv_vector<float>;
  constexpr std::size_t lanes = fnn::simd::lanes_v<V>;
  alignas(64) float v[lanes * lanes];
  for (std::size_t i = 0; i < lanes * lanes; ++i) v[i] = float(i * i % 97) - 40.f;
  V rows[lanes];
  for (std::size_t r = 0; r < lanes; ++r) rows[r] = fnn::simd::load_as<V>(v + r * lanes);
  alignas(64) float sums[lanes];
  fnn::simd::store_as(sums, fnn::simd::reduce_add_each(rows));
  for (std::size_t r = 0; r < lanes; ++r) {
    float expected = 0;
    for (std::size_t l = 0; l < lanes; ++l) expected += v[r * lanes + l];  // small integers: exact in any order
    BOOST_TEST(sums[r] == expected, "register " << r);
  }
}

BOOST_AUTO_TEST_SUITE_END()
