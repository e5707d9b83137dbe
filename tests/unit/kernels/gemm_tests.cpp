// fnn::kernels::gemm against the reference for every transpose, alpha/beta and many shapes (edges of the
// register tile and of the cache blocks, primes, the dense-layer shapes), with padded leading dimensions.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "fnn/kernels/gemm.hpp"
#include "gemm_test_util.hpp"

namespace {

using fnn::index_t;
using fnn::kernels::transpose;
using fnn::test::padded_matrix;

template <class T>
double run_case(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, T beta, index_t pad,
                bool* padding_ok, std::uint32_t seed = 1) {
  padded_matrix<T> a(ta == transpose::no ? m : k, ta == transpose::no ? k : m, pad, seed);
  padded_matrix<T> b(tb == transpose::no ? k : n, tb == transpose::no ? n : k, pad + 1, seed + 1);
  padded_matrix<T> c(m, n, pad + 2, seed + 2);
  const fnn::test::gemm_oracle<T> oracle(ta, tb, m, n, k, alpha, a, b, beta, c);
  fnn::kernels::gemm<T>(ta, tb, m, n, k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta, c.data.data(), c.ld);
  return fnn::test::gemm_error_ratio(c, oracle, k, padding_ok);
}

constexpr transpose both[] = {transpose::no, transpose::yes};

template <class T>
void check_shapes(const std::vector<std::tuple<index_t, index_t, index_t>>& shapes, std::vector<T> alphas,
                  std::vector<T> betas) {
  for (auto [m, n, k] : shapes)
    for (transpose ta : both)
      for (transpose tb : both)
        for (T alpha : alphas)
          for (T beta : betas) {
            bool padding_ok = false;
            const double ratio = run_case<T>(ta, tb, m, n, k, alpha, beta, 3, &padding_ok);
            BOOST_TEST_CONTEXT(fnn::test::name(ta) << fnn::test::name(tb) << " m=" << m << " n=" << n << " k=" << k
                                                   << " alpha=" << alpha << " beta=" << beta) {
              BOOST_TEST(ratio <= 1.0);
              BOOST_TEST(padding_ok);
            }
          }
}

// A' = scale A + z_scale (Z - z_center) + offset (per stored column): gemm with the transform against the
// reference GEMM on A' materialized in double, at 1 and 2 threads, which must give the same bits.
template <class T>
void check_a_transform(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, T beta) {
  const index_t ar = ta == transpose::no ? m : k, ac = ta == transpose::no ? k : m;
  padded_matrix<T> a(ar, ac, 3, 21), z(ar, ac, 5, 22);
  padded_matrix<T> b(tb == transpose::no ? k : n, tb == transpose::no ? n : k, 1, 23);
  const padded_matrix<T> c0(m, n, 2, 24);
  std::vector<T> coef[4];
  std::mt19937 gen(25);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  for (auto& v : coef) {
    v.resize(static_cast<std::size_t>(ac));
    for (auto& x : v) x = static_cast<T>(dist(gen));
  }
  // Z far from 0 and centred: the transform must subtract z_center before scaling.
  for (index_t i = 0; i < ar; ++i)
    for (index_t j = 0; j < ac; ++j) z.at(i, j) += T(100);
  for (auto& x : coef[2]) x += T(100);
  const fnn::kernels::a_transform<T> tf{z.data.data(), z.ld, coef[0].data(), coef[1].data(), coef[2].data(),
                                        coef[3].data()};

  // Oracle: A' and the bound |scale A| + |z_scale (Z - z_center)| + |offset| in double.
  std::vector<double> ad(a.data.size()), bound(a.data.size()), cd(c0.data.size()), cb(c0.data.size());
  for (index_t i = 0; i < ar; ++i)
    for (index_t j = 0; j < ac; ++j) {
      const auto jj = static_cast<std::size_t>(j);
      const double s = coef[0][jj] * double(a.at(i, j)), t = coef[1][jj] * (double(z.at(i, j)) - coef[2][jj]);
      ad[static_cast<std::size_t>(i * a.ld + j)] = s + t + coef[3][jj];
      bound[static_cast<std::size_t>(i * a.ld + j)] = std::abs(s) + std::abs(t) + std::abs(double(coef[3][jj]));
    }
  std::vector<double> bd(b.data.begin(), b.data.end()), bb(b.data.size());
  for (std::size_t i = 0; i < bd.size(); ++i) bb[i] = std::abs(bd[i]);
  for (std::size_t i = 0; i < cd.size(); ++i) cd[i] = double(c0.data[i]), cb[i] = std::abs(cd[i]);
  fnn::kernels::gemm_reference<double>(ta, tb, m, n, k, alpha, ad.data(), a.ld, bd.data(), b.ld, beta, cd.data(), c0.ld);
  fnn::kernels::gemm_reference<double>(ta, tb, m, n, k, std::abs(double(alpha)), bound.data(), a.ld, bb.data(), b.ld,
                                       std::abs(double(beta)), cb.data(), c0.ld);

  std::vector<padded_matrix<T>> results;
  for (int threads : {1, 2}) {
    fnn::set_num_threads(threads);
    padded_matrix<T> c = c0;
    fnn::kernels::gemm<T>(ta, tb, m, n, k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta, c.data.data(), c.ld,
                          fnn::kernels::no_epilogue{}, &tf);
    results.push_back(std::move(c));
  }
  fnn::set_num_threads(0);
  BOOST_TEST((results[0].data == results[1].data));
  // A' costs up to three roundings per element on top of the product's k + 2.
  double worst = 0;
  const double eps = std::numeric_limits<T>::epsilon();
  for (index_t i = 0; i < m; ++i)
    for (index_t j = 0; j < c0.ld; ++j) {
      const auto idx = static_cast<std::size_t>(i * c0.ld + j);
      if (j >= n) {
        BOOST_TEST(results[0].data[idx] == T(1e30));  // the padding is not written
        continue;
      }
      const double err = std::abs(double(results[0].data[idx]) - cd[idx]);
      worst = std::max(worst, err / (eps * double(k + 5) * cb[idx] + std::numeric_limits<T>::min()));
    }
  BOOST_TEST(worst <= 1.0);
  // The reference twin materializes the same A' (to float rounding).
  std::vector<T> twin(a.data.size());
  fnn::kernels::a_transform_reference<T>(ar, ac, a.data.data(), a.ld, tf, twin.data(), a.ld);
  for (index_t i = 0; i < ar; ++i)
    for (index_t j = 0; j < ac; ++j) {
      const auto idx = static_cast<std::size_t>(i * a.ld + j);
      BOOST_TEST(std::abs(double(twin[idx]) - ad[idx]) <= 4 * eps * bound[idx]);
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gemm)

BOOST_AUTO_TEST_CASE(small_and_prime_shapes_all_transposes_alpha_beta) {
  const index_t mr = fnn::kernels::gemm_tile_rows<float>, nr = fnn::kernels::gemm_tile_cols<float>;
  std::vector<std::tuple<index_t, index_t, index_t>> shapes = {
      {1, 1, 1},   {1, 2, 3},      {2, 1, 1},          {3, 5, 7},          {37, 53, 71},      {13, 17, 19},
      {mr, nr, 8}, {mr + 1, nr + 1, 9}, {mr - 1, nr - 1, 33}, {2 * mr, 2 * nr, 5}, {mr, nr + 3, 1}, {5, 3 * nr - 1, 2}};
  check_shapes<float>(shapes, {1.f, 0.5f, -2.f}, {0.f, 1.f, 0.75f});
}

BOOST_AUTO_TEST_CASE(cache_block_edges) {
  using cfg = fnn::kernels::detail::gemm_config<float>;
  // k crosses the kc block (partial sums stored and re-read), m crosses mc, n crosses nc.
  std::vector<std::tuple<index_t, index_t, index_t>> shapes = {
      {cfg::mr + 3, cfg::nr + 5, cfg::kc + 1}, {7, 9, 2 * cfg::kc + 3}, {cfg::mc + 5, 17, 11}, {3, cfg::nc + 7, 6}};
  check_shapes<float>(shapes, {1.f, -0.5f}, {0.f, 0.5f});
}

BOOST_AUTO_TEST_CASE(dense_layer_shapes) {
  // Y = X W^T (N,T), dX = dY W (N,N), dW += dY^T X (T,N) for the shapes the examples use.
  for (auto [m, n, k] : std::vector<std::tuple<index_t, index_t, index_t>>{{256, 10, 1024}, {1, 256, 784}, {32, 256, 256}}) {
    for (auto [ta, tb, beta] : {std::tuple{transpose::no, transpose::yes, 0.f}, std::tuple{transpose::no, transpose::no, 0.f},
                                std::tuple{transpose::yes, transpose::no, 1.f}}) {
      bool padding_ok = false;
      const double ratio = run_case<float>(ta, tb, m, n, k, 1.f, beta, 16, &padding_ok);
      BOOST_TEST_CONTEXT(fnn::test::name(ta) << fnn::test::name(tb) << " m=" << m << " n=" << n << " k=" << k) {
        BOOST_TEST(ratio <= 1.0);
        BOOST_TEST(padding_ok);
      }
    }
  }
  bool padding_ok = false;
  BOOST_TEST(run_case<float>(transpose::no, transpose::yes, 256, 1024, 10, 1.f, 0.f, 1, &padding_ok) <= 1.0);
  BOOST_TEST(run_case<float>(transpose::no, transpose::yes, 1, 784, 256, 1.f, 0.f, 1, &padding_ok) <= 1.0);
  BOOST_TEST(padding_ok);
}

// k is cut into as few blocks as kc allows, of near-equal depth: no short tail block that would run the
// micro-kernel for a handful of k steps.
BOOST_AUTO_TEST_CASE(k_blocks_are_even) {
  using cfg = fnn::kernels::detail::gemm_config<float>;
  BOOST_TEST(cfg::k_block(0) == 1);
  for (index_t k = 1; k <= 4 * cfg::kc + 17; ++k) {
    const index_t kb = cfg::k_block(k), blocks = (k + kb - 1) / kb, last = k - (blocks - 1) * kb;
    BOOST_TEST_REQUIRE(kb >= 1);
    BOOST_TEST_REQUIRE(kb <= cfg::kc);
    BOOST_TEST_REQUIRE(blocks == (k + cfg::kc - 1) / cfg::kc);
    BOOST_TEST_REQUIRE(last > kb - 8 * blocks, "k=" << k << " kb=" << kb << " last block " << last);
  }
}

BOOST_AUTO_TEST_CASE(double_precision) {
  using cfg = fnn::kernels::detail::gemm_config<double>;
  check_shapes<double>({{1, 1, 1}, {37, 53, 71}, {20, 40, 300}, {11, 29, cfg::kc + 9}}, {1.0, -0.5}, {0.0, 1.0});
}

BOOST_AUTO_TEST_CASE(beta_zero_does_not_read_c) {
  const index_t m = 19, n = 45, k = 13;
  padded_matrix<float> a(m, k, 0, 3), b(k, n, 0, 4);
  std::vector<float> c(static_cast<std::size_t>(m * n), std::numeric_limits<float>::quiet_NaN());
  fnn::kernels::gemm<float>(transpose::no, transpose::no, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(), b.ld, 0.f,
                            c.data(), n);
  std::vector<float> ref(c.size(), 0.f);
  fnn::kernels::gemm_reference<float>(transpose::no, transpose::no, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(),
                                      b.ld, 0.f, ref.data(), n);
  for (std::size_t i = 0; i < c.size(); ++i) BOOST_TEST(std::abs(c[i] - ref[i]) <= 1e-5f);
}

BOOST_AUTO_TEST_CASE(k_zero_and_alpha_zero_scale_c) {
  for (index_t k : {index_t(0), index_t(5)}) {
    const index_t m = 9, n = 33;
    // alpha == 0: A and B are not referenced (BLAS), so NaNs there must not leak into C.
    std::vector<float> a(static_cast<std::size_t>(m * 5), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> b(static_cast<std::size_t>(5 * n), std::numeric_limits<float>::quiet_NaN());
    padded_matrix<float> c(m, n, 0, 7);
    const padded_matrix<float> c0 = c;
    fnn::kernels::gemm<float>(transpose::no, transpose::no, m, n, k, k == 0 ? 1.f : 0.f, a.data(), 5, b.data(), n,
                              0.5f, c.data.data(), c.ld);
    for (std::size_t i = 0; i < c.data.size(); ++i) BOOST_TEST(c.data[i] == 0.5f * c0.data[i]);
  }
}

BOOST_AUTO_TEST_CASE(threads_bit_identical) {
  // Deterministic for a thread count across runs, and (by construction) the same bits for 1 and 2 threads.
  // Shapes split along n, along m, and the small-m dot-product path.
  for (auto [m, n, k, ta, tb] : std::vector<std::tuple<index_t, index_t, index_t, transpose, transpose>>{
           {203, 301, 517, transpose::no, transpose::yes}, {203, 301, 517, transpose::yes, transpose::no},
           {64, 1000, 300, transpose::no, transpose::yes}, {64, 1000, 300, transpose::no, transpose::no},
           {600, 40, 300, transpose::yes, transpose::no}, {3, 1000, 517, transpose::no, transpose::yes}}) {
    padded_matrix<float> a(ta == transpose::no ? m : k, ta == transpose::no ? k : m, 1, 11);
    padded_matrix<float> b(tb == transpose::no ? k : n, tb == transpose::no ? n : k, 2, 12);
    std::vector<std::vector<float>> results;
    for (int threads : {1, 2, 2, 1, 2}) {
      fnn::set_num_threads(threads);
#if defined(FNN_HAS_OPENMP)
      BOOST_TEST(fnn::num_threads() == threads);
#endif
      std::vector<float> c(static_cast<std::size_t>(m * n), 0.25f);
      fnn::kernels::gemm<float>(ta, tb, m, n, k, 1.5f, a.data.data(), a.ld, b.data.data(), b.ld, 1.f, c.data(), n);
      results.push_back(std::move(c));
    }
    for (const auto& r : results) BOOST_TEST((r == results.front()), "m=" << m << " n=" << n << " k=" << k);
  }
  fnn::set_num_threads(0);
}

BOOST_AUTO_TEST_CASE(a_transform_applied_while_packing) {
  using cfg = fnn::kernels::detail::gemm_config<float>;
  const index_t mr = cfg::mr, nr = cfg::nr;
  // Odd sizes, m = 1 (the dots path), k = 1, n <= nr (A read in place without a transform), the mc and kc block
  // edges, and products big enough to run on two threads (split along m and along n).
  std::vector<std::tuple<index_t, index_t, index_t>> shapes = {
      {1, 1, 1},           {1, 37, 5},          {3, 5, 7},  {37, 53, 71},      {mr + 1, nr + 1, 9}, {5, 3 * nr - 1, 1},
      {2 * mr - 1, nr, 17}, {cfg::mc + 5, 17, 11}, {7, 9, 2 * cfg::kc + 3}, {301, 20, 517}, {203, 301, 517}};
  for (auto [m, n, k] : shapes)
    for (transpose ta : both)
      for (transpose tb : both)
        for (auto [alpha, beta] : {std::pair{1.f, 0.f}, std::pair{-0.5f, 1.f}}) {
          BOOST_TEST_CONTEXT(fnn::test::name(ta) << fnn::test::name(tb) << " m=" << m << " n=" << n << " k=" << k
                                                 << " alpha=" << alpha << " beta=" << beta) {
            check_a_transform<float>(ta, tb, m, n, k, alpha, beta);
          }
        }
  check_a_transform<double>(transpose::no, transpose::no, 37, 53, 71, 1.0, 0.0);
  check_a_transform<double>(transpose::yes, transpose::no, 53, 37, 71, 1.0, 1.0);
}

BOOST_AUTO_TEST_CASE(simd_transpose_square_block) {
  using V = fnn::kernels::detail::gemm_config<float>::vec;
  constexpr std::size_t w = fnn::simd::lanes_v<V>;
  float in[w * w], out[w * w];
  for (std::size_t i = 0; i < w * w; ++i) in[i] = static_cast<float>(i);
  V r[w];
  for (std::size_t i = 0; i < w; ++i) r[i] = fnn::simd::load_as<V>(in + i * w);
  fnn::simd::transpose(r);
  for (std::size_t i = 0; i < w; ++i) fnn::simd::store_as<V>(out + i * w, r[i]);
  for (std::size_t i = 0; i < w; ++i)
    for (std::size_t j = 0; j < w; ++j) BOOST_TEST(out[i * w + j] == in[j * w + i]);
}

BOOST_AUTO_TEST_SUITE_END()
