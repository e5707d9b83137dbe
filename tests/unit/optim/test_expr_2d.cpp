// The 2-D vocabulary of expr/ (matrix leaves with a leading dimension, per-column vectors, per-column
// reductions, multi-assignment, thread splits) against plain loops written with the same scalar operations,
// so most comparisons are exact: the vector lanes and the scalar tail of the one evaluation loop must round
// like the plain scalar code (simd::fma, not std::fma, on targets without FMA).
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fnn/core/tensor.hpp"
#include "fnn/expr/assign.hpp"
#include "fnn/layers/activations.hpp"

namespace ex = fnn::expr;
using fnn::index_t;

namespace {

// rows x cols values inside a buffer with leading dimension ld = cols + 3 (never a multiple of the width).
struct block {
  index_t rows, cols, ld;
  std::vector<float> v;
  block(index_t r, index_t c, unsigned seed, float lo = -2.f, float hi = 2.f) : rows(r), cols(c), ld(c + 3) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    v.resize(std::size_t(rows * ld + 1));
    for (auto& x : v) x = d(gen);
  }
  float& operator()(index_t i, index_t j) { return v[std::size_t(i * ld + j)]; }
  auto ref() { return ex::matrix(v.data(), rows, cols, ld); }
  auto cref() const { return ex::matrix(static_cast<const float*>(v.data()), rows, cols, ld); }
};

std::vector<float> random_vector(index_t n, unsigned seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = d(gen);
  return v;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Odd shapes: below, at and around the SIMD width, with tails of every length.
const std::vector<index_t> row_counts{1, 3, 70};
const std::vector<index_t> col_counts{1, 7, 8, 9, 16, 17, 33};

}  // namespace

BOOST_AUTO_TEST_SUITE(expr_2d)

BOOST_DATA_TEST_CASE(map_with_per_column_broadcast_matches_plain_loop,
                     boost::unit_test::data::make(row_counts) * boost::unit_test::data::make(col_counts), rows, cols) {
  const block z(rows, cols, 1);
  block y(rows, cols, 2);
  const block before = y;
  const auto scale = random_vector(cols, 3), shift = random_vector(cols, 4);
  const auto S = ex::per_column(scale.data(), cols), B = ex::per_column(shift.data(), cols);
  ex::assign(y.ref(), ex::fma(z.cref(), S, B) * 0.5f - S);
  for (index_t i = 0; i < rows; ++i)
    for (index_t j = 0; j < y.ld; ++j) {
      const float got = y.v[std::size_t(i * y.ld + j)];
      if (j >= cols) {  // the padding between rows is not touched
        BOOST_TEST(same_bits(got, before.v[std::size_t(i * y.ld + j)]));
        continue;
      }
      const float want = fnn::simd::fma(z.v[std::size_t(i * z.ld + j)], scale[std::size_t(j)], shift[std::size_t(j)]) *
                             0.5f - scale[std::size_t(j)];
      BOOST_TEST(same_bits(got, want), "(" << i << ", " << j << "): " << got << " vs " << want);
    }
}

BOOST_DATA_TEST_CASE(per_column_reductions_match_row_order_loops,
                     boost::unit_test::data::make(row_counts) * boost::unit_test::data::make(col_counts), rows, cols) {
  const block x(rows, cols, 5);
  block du(rows, cols, 6);
  const auto w = random_vector(cols, 7);
  std::vector<float> s1(std::size_t(cols), 0.f), s2(std::size_t(cols), 0.25f);
  const auto S1 = ex::per_column(s1.data(), cols), S2 = ex::per_column(s2.data(), cols);
  const auto W = ex::per_column(w.data(), cols);
  // One pass: a stored map, and two reductions of it (one through fma), the map shared through let<0>.
  const auto d = ex::let<0>(x.cref() * W + 1.f);
  ex::assign(d, ex::into(du.ref(), d), ex::into(S1, S1 + d), ex::into(S2, ex::fma(d, x.cref(), S2)));
  for (index_t j = 0; j < cols; ++j) {
    float r1 = 0.f, r2 = 0.25f;
    for (index_t i = 0; i < rows; ++i) {
      const float xv = x.v[std::size_t(i * x.ld + j)], dv = xv * w[std::size_t(j)] + 1.f;
      BOOST_TEST(same_bits(du.v[std::size_t(i * du.ld + j)], dv));
      r1 = r1 + dv;
      r2 = fnn::simd::fma(dv, xv, r2);
    }
    BOOST_TEST(same_bits(s1[std::size_t(j)], r1), "column " << j << ": " << s1[std::size_t(j)] << " vs " << r1);
    BOOST_TEST(same_bits(s2[std::size_t(j)], r2), "column " << j << ": " << s2[std::size_t(j)] << " vs " << r2);
  }
}

BOOST_AUTO_TEST_CASE(vector_lanes_and_scalar_tail_round_alike) {
  // The same values once at the start of a row (vector lanes) and once shifted into the tail: an fma and an
  // activation must give the same bits in both places. (std::fma in the tail of a build without FMA would round
  // once where the lanes round twice.)
  constexpr auto w = static_cast<index_t>(fnn::simd::width<float>);
  const index_t cols = 2 * w - 1;
  const auto a = random_vector(cols, 8, -3.f, 3.f), b = random_vector(cols, 9, -3.f, 3.f),
             c = random_vector(cols, 10, -3.f, 3.f);
  std::vector<float> first;  // the results at shift 0
  for (index_t shift : {index_t(0), w - 1}) {
    // Element k of the inputs sits at column k + shift: lanes for small shifted k, tail when k + shift >= w.
    const index_t n = cols + shift;
    const auto sz = static_cast<std::size_t>(n);
    std::vector<float> A(sz), B(sz), C(sz), out(sz);
    for (index_t k = 0; k < cols; ++k) {
      A[std::size_t(k + shift)] = a[std::size_t(k)];
      B[std::size_t(k + shift)] = b[std::size_t(k)];
      C[std::size_t(k + shift)] = c[std::size_t(k)];
    }
    const auto m = [&](std::vector<float>& v) { return ex::matrix(static_cast<const float*>(v.data()), 1, n, n); };
    ex::assign(ex::matrix(out.data(), 1, n, n),
               ex::fma(m(A), m(B), m(C)) + ex::activation<fnn::act::tanh_fn>(m(A) * m(B) + m(C)));
    for (index_t k = 0; k < cols; ++k) {
      const float av = a[std::size_t(k)], bv = b[std::size_t(k)], cv = c[std::size_t(k)];
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA)
      const float f = std::fma(av, bv, cv);
#else
      const float f = av * bv + cv;
#endif
      const float got = out[std::size_t(k + shift)];
      // The fma term exactly; the activation within a few ulps (vector and <cmath> tanh are different codes).
      const float act = got - f;
      BOOST_TEST(std::abs(act - std::tanh(av * bv + cv)) <= 4e-6f * (1 + std::abs(got)));
      BOOST_TEST(same_bits(fnn::simd::fma(av, bv, cv), f));
    }
    if (shift == 0) {
      first.assign(out.begin(), out.end());
    } else {
      for (index_t k = 0; k < cols; ++k)
        BOOST_TEST(same_bits(out[std::size_t(k + shift)], first[std::size_t(k)]),
                   "element " << k << " in the " << (k + shift >= w ? "tail" : "lanes") << " vs "
                              << (k >= w ? "tail" : "lanes"));
    }
  }
}

BOOST_AUTO_TEST_CASE(thread_splits_give_the_same_bits) {
  // Big enough (rows x cols >= 2 x parallel_pass_elements) for two and three parts; widths off the SIMD width.
  const index_t rows = 400, cols = 3 * 111;
  static_assert(400 * 333 >= 2 * ex::parallel_pass_elements);
  const block x(rows, cols, 11);
  const auto g = random_vector(cols, 12);
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 2, 3}) {
    fnn::set_num_threads(threads);
#if defined(FNN_HAS_OPENMP)
    BOOST_TEST(ex::detail::pass_threads(rows, cols, rows) == std::min(threads, 2));
#endif
    block y(rows, cols, 13);
    const auto nc = static_cast<std::size_t>(cols);
    std::vector<float> s(nc, 0.f), mean(nc), var(nc);
    const auto G = ex::per_column(g.data(), cols);
    const auto S = ex::per_column(s.data(), cols);
    ex::assign(y.ref(), ex::activation<fnn::act::gelu_fn>(x.cref() * G));                // rows split
    const auto d = ex::let<0>(ex::activation<fnn::act::tanh_fn>(y.cref() * x.cref()));
    ex::assign(d, ex::into(y.ref(), d), ex::into(S, S + d));                            // columns split
    ex::column_mean_variance(x.cref(), mean.data(), var.data());
    runs.push_back(y.v);
    runs.back().insert(runs.back().end(), s.begin(), s.end());
    runs.back().insert(runs.back().end(), mean.begin(), mean.end());
    runs.back().insert(runs.back().end(), var.begin(), var.end());
  }
  fnn::set_num_threads(0);
  for (std::size_t r = 1; r < runs.size(); ++r) BOOST_TEST((runs[r] == runs[0]), "run " << r);
}

BOOST_DATA_TEST_CASE(column_mean_variance_is_safe_with_a_large_offset, boost::unit_test::data::make(col_counts),
                     cols) {
  // Values 1e4 + U(-1, 1): a float sum of squares would lose every digit of the variance.
  const index_t rows = 257;
  const block x(rows, cols, 14, 1e4f - 1.f, 1e4f + 1.f);
  const auto nc = static_cast<std::size_t>(cols);
  std::vector<float> mean(nc), var(nc);
  ex::column_mean_variance(x.cref(), mean.data(), var.data());
  for (index_t j = 0; j < cols; ++j) {
    double m = 0, v = 0;
    for (index_t i = 0; i < rows; ++i) m += x.v[std::size_t(i * x.ld + j)];
    m /= rows;
    for (index_t i = 0; i < rows; ++i) v += (x.v[std::size_t(i * x.ld + j)] - m) * (x.v[std::size_t(i * x.ld + j)] - m);
    v /= rows;
    // The mean is a float sum of 257 values near 1e4 (as a GEMM epilogue tile would form it): a few ulps of 1e4.
    BOOST_TEST(std::abs(mean[std::size_t(j)] - m) <= 1e-5 * m, "mean of column " << j);
    BOOST_TEST(std::abs(var[std::size_t(j)] - v) <= 2e-3 * v, "variance of column " << j << ": " << var[std::size_t(j)]
                                                                                     << " vs " << v);
  }
}

BOOST_AUTO_TEST_CASE(shape_mismatches_throw_with_the_shapes) {
  block a(4, 5, 15), b(4, 6, 16), c(3, 5, 17);
  std::vector<float> s(5);
  const auto has = [](const std::string& text, std::initializer_list<const char*> parts) {
    for (const char* p : parts)
      if (text.find(p) == std::string::npos) return false;
    return true;
  };
  BOOST_CHECK_EXCEPTION(ex::assign(a.ref(), b.cref() + 1.f), fnn::shape_error, [&](const fnn::shape_error& e) {
    return has(e.what(), {"4 x 5", "4 x 6"});
  });
  BOOST_CHECK_EXCEPTION(ex::assign(a.ref(), a.cref() * c.cref()), fnn::shape_error, [&](const fnn::shape_error& e) {
    return has(e.what(), {"mixed x 5"});
  });
  BOOST_CHECK_EXCEPTION(ex::assign(ex::into(a.ref(), a.cref()), ex::into(ex::per_column(s.data(), 4), 1.f)),
                        fnn::shape_error, [&](const fnn::shape_error& e) { return has(e.what(), {"any x 4"}); });
  // Only per-column operands: the number of rows is unknown.
  BOOST_CHECK_EXCEPTION(ex::assign(ex::into(ex::per_column(s.data(), 5), 1.f)), fnn::shape_error,
                        [&](const fnn::shape_error& e) { return has(e.what(), {"without a matrix operand"}); });
}

BOOST_AUTO_TEST_SUITE_END()
