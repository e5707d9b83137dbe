#define BOOST_TEST_MODULE fnn_optim
#include <boost/test/unit_test.hpp>
#include <boost/test/data/test_case.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "fnn/core/tensor.hpp"
#include "fnn/expr/assign.hpp"

namespace ex = fnn::expr;

namespace {

const std::vector<std::size_t> sizes{0, 1, 15, 16, 17, 1000};

template <class T>
fnn::buffer<T> random_buffer(std::size_t n, unsigned seed, T lo = T(-2), T hi = T(2)) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<T> d(lo, hi);
  fnn::buffer<T> b(n);
  for (auto& x : b) x = d(gen);
  // A few exact zeros and ties so sign/max/where see them.
  if (n > 3 && lo < T(0)) b[3] = T(0);
  return b;
}

// Checks dst == ref(i) for every element with an ulp-scale tolerance (fma contraction may differ).
template <class T, class Ref>
void check_all(const fnn::buffer<T>& dst, Ref ref) {
  for (std::size_t i = 0; i < dst.size(); ++i) {
    const T want = ref(i);
    BOOST_TEST_CONTEXT("element " << i << " of " << dst.size()) {
      BOOST_TEST(std::abs(dst[i] - want) <= T(8) * std::numeric_limits<T>::epsilon() * (T(1) + std::abs(want)),
                 dst[i] << " vs " << want);
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(expr_nodes)

BOOST_DATA_TEST_CASE(every_node_matches_scalar_reference, boost::unit_test::data::make(sizes), n) {
  using T = float;
  auto a = random_buffer<T>(n, 1), b = random_buffer<T>(n, 2), c = random_buffer<T>(n, 3, T(0.5), T(3));
  fnn::buffer<T> out(n, T(-99));
  const auto A = ex::array(std::as_const(a));
  const auto B = ex::array(std::as_const(b));
  const auto C = ex::array(std::as_const(c));
  const auto O = ex::array(out);

  ex::assign(O, A + B);
  check_all(out, [&](std::size_t i) { return a[i] + b[i]; });
  ex::assign(O, A - 2.5f);
  check_all(out, [&](std::size_t i) { return a[i] - 2.5f; });
  ex::assign(O, 3 * A * B);
  check_all(out, [&](std::size_t i) { return 3 * a[i] * b[i]; });
  ex::assign(O, A / C);
  check_all(out, [&](std::size_t i) { return a[i] / c[i]; });
  ex::assign(O, 1.0 / C);
  check_all(out, [&](std::size_t i) { return 1.0f / c[i]; });
  ex::assign(O, -A);
  check_all(out, [&](std::size_t i) { return -a[i]; });
  ex::assign(O, ex::sqrt(C));
  check_all(out, [&](std::size_t i) { return std::sqrt(c[i]); });
  ex::assign(O, ex::abs(A));
  check_all(out, [&](std::size_t i) { return std::abs(a[i]); });
  ex::assign(O, ex::max(A, B));
  check_all(out, [&](std::size_t i) { return std::max(a[i], b[i]); });
  ex::assign(O, ex::min(A, 0.25f));
  check_all(out, [&](std::size_t i) { return std::min(a[i], 0.25f); });
  ex::assign(O, ex::sign(A));
  check_all(out, [&](std::size_t i) { return a[i] > 0 ? 1.0f : (a[i] < 0 ? -1.0f : 0.0f); });
  ex::assign(O, ex::fma(A, B, C));
  check_all(out, [&](std::size_t i) { return a[i] * b[i] + c[i]; });
  ex::assign(O, ex::clamp(A, -0.5f, 0.75f));
  check_all(out, [&](std::size_t i) { return std::clamp(a[i], -0.5f, 0.75f); });
  ex::assign(O, ex::where(ex::lt(A, B), A * 2, C));
  check_all(out, [&](std::size_t i) { return a[i] < b[i] ? a[i] * 2 : c[i]; });
  ex::assign(O, ex::where(ex::ge(A, 0), C, -C));
  check_all(out, [&](std::size_t i) { return a[i] >= 0 ? c[i] : -c[i]; });
  ex::assign(O, ex::where(ex::gt(A, B), 1, 0) + ex::where(ex::le(A, B), 10, 0));
  check_all(out, [&](std::size_t i) { return (a[i] > b[i] ? 1.0f : 0.0f) + (a[i] <= b[i] ? 10.0f : 0.0f); });
  ex::assign(O, 7);
  check_all(out, [&](std::size_t) { return 7.0f; });
  // A deeper tree, in double.
  auto ad = random_buffer<double>(n, 4), cd = random_buffer<double>(n, 5, 0.5, 3.0);
  fnn::buffer<double> od(n);
  ex::assign(ex::array(od), ex::sqrt(ex::abs(ex::array(ad)) + 1.0) * ex::array(cd) - ex::array(ad) / ex::array(cd));
  check_all(od, [&](std::size_t i) { return std::sqrt(std::abs(ad[i]) + 1.0) * cd[i] - ad[i] / cd[i]; });
}

BOOST_DATA_TEST_CASE(in_place_and_unaligned, boost::unit_test::data::make(sizes), n) {
  auto a = random_buffer<float>(n + 1, 6);
  const auto ref = a;
  // Offset by one element: every vector load/store is unaligned.
  const auto A = ex::array(std::span<float>(a).subspan(1));
  ex::assign(A, A * A + 1);
  BOOST_TEST(a[0] == ref[0]);
  for (std::size_t i = 1; i <= n; ++i) BOOST_TEST(a[i] == ref[i] * ref[i] + 1, "at " << i);
}

BOOST_DATA_TEST_CASE(multi_assign_reads_old_values, boost::unit_test::data::make(sizes), n) {
  auto x = random_buffer<float>(n, 7), y = random_buffer<float>(n, 8), z = random_buffer<float>(n, 9);
  const auto x0 = x, y0 = y, z0 = z;
  const auto X = ex::array(x), Y = ex::array(y), Z = ex::array(z);
  // Swap x and y, and z reads both: with sequential stores z would see the swapped values.
  ex::assign(ex::into(X, Y), ex::into(Y, X), ex::into(Z, X - Y));
  for (std::size_t i = 0; i < n; ++i) {
    BOOST_TEST(x[i] == y0[i]);
    BOOST_TEST(y[i] == x0[i]);
    BOOST_TEST(z[i] == x0[i] - y0[i]);
  }
}

BOOST_DATA_TEST_CASE(let_bindings_are_shared_values, boost::unit_test::data::make(sizes), n) {
  auto m = random_buffer<float>(n, 11), p = random_buffer<float>(n, 12), g = random_buffer<float>(n, 13);
  const auto m0 = m, p0 = p;
  const auto M = ex::array(m), P = ex::array(p);
  const auto d = ex::let<0>(ex::array(std::as_const(g)) * 2.0f + P);  // reads the OLD p
  const auto m_new = ex::let<1>(0.5f * M + d);
  ex::assign(d, m_new, ex::into(M, m_new), ex::into(P, P - m_new * d));
  for (std::size_t i = 0; i < n; ++i) {
    const float dd = g[i] * 2.0f + p0[i], mn = 0.5f * m0[i] + dd;
    BOOST_TEST(std::abs(m[i] - mn) <= 1e-6f * (1 + std::abs(mn)));
    BOOST_TEST(std::abs(p[i] - (p0[i] - mn * dd)) <= 1e-5f * (1 + std::abs(p[i])));
  }
}

BOOST_DATA_TEST_CASE(sum_matches_double_reference, boost::unit_test::data::make(sizes), n) {
  auto a = random_buffer<float>(n, 10);
  if (n == 0) {
    BOOST_TEST(ex::sum(ex::array(a)) == 0.0f);
    return;
  }
  double ref = 0;
  for (float v : a) ref += double(v) * v;
  const float got = ex::sum(ex::array(a) * ex::array(a));
  BOOST_TEST(std::abs(got - ref) <= 1e-5 * ref);
}

BOOST_AUTO_TEST_CASE(size_mismatch_throws_with_sizes) {
  fnn::buffer<float> a(10), b(11), out(10);
  BOOST_CHECK_THROW(ex::assign(ex::array(out), ex::array(a) + ex::array(b)), fnn::shape_error);
  BOOST_CHECK_EXCEPTION(ex::assign(ex::array(out), ex::array(b) * 2), fnn::shape_error, [](const auto& e) {
    return std::string(e.what()).find("10") != std::string::npos && std::string(e.what()).find("11") != std::string::npos;
  });
  fnn::buffer<float> other(9);
  BOOST_CHECK_THROW(ex::assign(ex::into(ex::array(out), ex::array(a)), ex::into(ex::array(other), 1)), fnn::shape_error);
  BOOST_CHECK_THROW(ex::sum(ex::array(a) + ex::array(b)), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()
