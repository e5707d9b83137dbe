// GEMM epilogues: apply() sees the finished values with the right indices, reduce() sees every stored element
// exactly once, and column_moments matches a double-precision two-pass computation for any thread count.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "fnn/kernels/gemm.hpp"
#include "gemm_test_util.hpp"

namespace {

using fnn::index_t;
using fnn::kernels::transpose;
using fnn::test::padded_matrix;

// bias + leaky ReLU; also records the row index into the stored value to catch wrong row/col arguments.
struct bias_leaky_relu {
  const float* bias;
  template <class V>
  V apply(V v, index_t row, index_t col) const {
    const V x = v + fnn::simd::load_as<V>(bias + col);
    return fnn::simd::max(x, x * V(0.125f)) + V(static_cast<float>(row) * 1e3f);
  }
};

// Counts how often each element is reported and sums them per column in per-tile slots.
struct coverage_reducer {
  index_t m, n, ldc_seen = -1;
  std::vector<int> hits;
  std::vector<double> slot_sums;  // [row / tile_rows][col]
  coverage_reducer(index_t m_, index_t n_)
      : m(m_), n(n_), hits(static_cast<std::size_t>(m_ * n_), 0),
        slot_sums(static_cast<std::size_t>((m_ / fnn::kernels::gemm_tile_rows<float> + 1) * n_), 0.0) {}
  void reduce(const float* tile, index_t ldc, index_t row, index_t rows, index_t col, index_t cols) {
    ldc_seen = ldc;
    BOOST_REQUIRE(row % fnn::kernels::gemm_tile_rows<float> == 0);
    const index_t slot = row / fnn::kernels::gemm_tile_rows<float>;
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        ++hits[static_cast<std::size_t>((row + i) * n + col + j)];
        slot_sums[static_cast<std::size_t>(slot * n + col + j)] += tile[i * ldc + j];
      }
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(gemm_epilogue)

BOOST_AUTO_TEST_CASE(apply_bias_activation_matches_reference) {
  for (auto [m, n, k] : {std::tuple<index_t, index_t, index_t>{37, 53, 71}, {64, 96, 300}, {1, 10, 784}, {5, 1, 3}}) {
    padded_matrix<float> x(m, k, 2, 21), w(n, k, 1, 22), y(m, n, 3, 23);
    std::vector<float> bias(static_cast<std::size_t>(n));
    for (index_t j = 0; j < n; ++j) bias[static_cast<std::size_t>(j)] = 0.01f * static_cast<float>(j) - 0.2f;
    padded_matrix<float> ref = y;
    fnn::kernels::gemm_reference<float>(transpose::no, transpose::yes, m, n, k, 1.f, x.data.data(), x.ld,
                                        w.data.data(), w.ld, 0.5f, ref.data.data(), ref.ld);
    const bias_leaky_relu ep{bias.data()};
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) ref.at(i, j) = ep.apply(ref.at(i, j), i, j);
    fnn::kernels::gemm(transpose::no, transpose::yes, m, n, k, 1.f, x.data.data(), x.ld, w.data.data(), w.ld, 0.5f,
                       y.data.data(), y.ld, ep);
    double worst = 0;
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) worst = std::max(worst, double(std::abs(y.at(i, j) - ref.at(i, j))) -
                                                                  1e-6 * double(k) - 1e-7 * std::abs(ref.at(i, j)));
    BOOST_TEST_CONTEXT("m=" << m << " n=" << n << " k=" << k) { BOOST_TEST(worst <= 0.0); }
  }
}

BOOST_AUTO_TEST_CASE(apply_runs_once_after_last_k_block) {
  // k spans several kc blocks: a transform applied to partial sums would be visible (x -> 2x + 1).
  using cfg = fnn::kernels::detail::gemm_config<float>;
  const index_t m = 9, n = 40, k = 2 * cfg::kc + 5;
  padded_matrix<float> a(m, k, 0, 31), b(k, n, 0, 32);
  std::vector<float> c(static_cast<std::size_t>(m * n)), ref(c.size());
  fnn::kernels::gemm(transpose::no, transpose::no, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(), b.ld, 0.f,
                     c.data(), n, fnn::kernels::elementwise{[](auto v, index_t, index_t) { return v * 2.f + 1.f; }});
  fnn::kernels::gemm_reference<float>(transpose::no, transpose::no, m, n, k, 1.f, a.data.data(), a.ld,
                                      b.data.data(), b.ld, 0.f, ref.data(), n);
  for (std::size_t i = 0; i < c.size(); ++i) BOOST_TEST(std::abs(c[i] - (2.f * ref[i] + 1.f)) <= 1e-3f);
}

BOOST_AUTO_TEST_CASE(reduce_sees_every_stored_element_once) {
  using cfg = fnn::kernels::detail::gemm_config<float>;
  for (int threads : {1, 2}) {
    fnn::set_num_threads(threads);
    const index_t m = 2 * cfg::mr + 3, n = 3 * cfg::nr + 7, k = cfg::kc + 9;
    padded_matrix<float> a(k, m, 1, 41), b(k, n, 0, 42), c(m, n, 5, 43);
    coverage_reducer red(m, n);
    fnn::kernels::gemm(transpose::yes, transpose::no, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(), b.ld, 0.f,
                       c.data.data(), c.ld, red);
    BOOST_TEST(red.ldc_seen == c.ld);
    for (int h : red.hits) BOOST_TEST(h == 1);
    std::vector<double> col_sum(static_cast<std::size_t>(n), 0.0), expected(static_cast<std::size_t>(n), 0.0);
    for (std::size_t s = 0; s < red.slot_sums.size(); ++s) col_sum[s % static_cast<std::size_t>(n)] += red.slot_sums[s];
    for (index_t i = 0; i < m; ++i)
      for (index_t j = 0; j < n; ++j) expected[static_cast<std::size_t>(j)] += c.at(i, j);
    for (index_t j = 0; j < n; ++j)
      BOOST_TEST(std::abs(col_sum[static_cast<std::size_t>(j)] - expected[static_cast<std::size_t>(j)]) <= 1e-9);
  }
  fnn::set_num_threads(0);
}

BOOST_AUTO_TEST_CASE(reduce_covers_small_batch_dot_path) {
  // m <= 4 with Y = X W^T takes the unpacked dot-product path; same reduce() contract.
  for (index_t m : {1, 3, 4}) {
    const index_t n = 2 * fnn::kernels::gemm_tile_cols<float> + 3, k = 37;
    padded_matrix<float> x(m, k, 1, 61), w(n, k, 2, 62), y(m, n, 1, 63);
    coverage_reducer red(m, n);
    fnn::kernels::gemm(transpose::no, transpose::yes, m, n, k, 1.f, x.data.data(), x.ld, w.data.data(), w.ld, 0.f,
                       y.data.data(), y.ld, red);
    for (int h : red.hits) BOOST_TEST(h == 1);
  }
}

BOOST_AUTO_TEST_CASE(column_moments_with_apply_match_two_pass_double) {
  // The fused-batch-norm forward shape: bias-free product, statistics of the stored output; offset data so a
  // naive float sum of squares would lose digits.
  const index_t m = 203, n = 77, k = 129;
  padded_matrix<float> x(m, k, 0, 51), w(n, k, 0, 52);
  for (auto& v : x.data) v += 3.f;
  std::vector<float> results[2][2];
  for (int threads : {1, 2}) {
    fnn::set_num_threads(threads);
    std::vector<float> y(static_cast<std::size_t>(m * n));
    fnn::kernels::column_moments<float> stats(m, n, fnn::kernels::gemm_tile_rows<float>);
    fnn::kernels::gemm(transpose::no, transpose::yes, m, n, k, 1.f, x.data.data(), x.ld, w.data.data(), w.ld, 0.f,
                       y.data(), n, stats);
    std::vector<float> mean(static_cast<std::size_t>(n)), var(static_cast<std::size_t>(n));
    stats.finish(mean.data(), var.data());
    for (index_t j = 0; j < n; ++j) {
      double mu = 0, m2 = 0;
      for (index_t i = 0; i < m; ++i) mu += y[static_cast<std::size_t>(i * n + j)];
      mu /= double(m);
      for (index_t i = 0; i < m; ++i) m2 += std::pow(y[static_cast<std::size_t>(i * n + j)] - mu, 2);
      const double var_ref = m2 / double(m);
      BOOST_TEST(std::abs(mean[static_cast<std::size_t>(j)] - mu) <= 1e-5 * (1 + std::abs(mu)));
      BOOST_TEST(std::abs(var[static_cast<std::size_t>(j)] - var_ref) <= 1e-5 * var_ref);
    }
    results[threads - 1][0] = mean;
    results[threads - 1][1] = var;
  }
  BOOST_TEST((results[0][0] == results[1][0]));
  BOOST_TEST((results[0][1] == results[1][1]));
  fnn::set_num_threads(0);
}

BOOST_AUTO_TEST_SUITE_END()
