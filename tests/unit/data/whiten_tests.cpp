// PCA and ZCA whitening: the whitened training set has identity covariance, PCA keeps components ordered by
// variance, and both agree with numpy.linalg.eigh (whiten_numpy.py; skipped, visibly, without numpy).
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "fnn/data/whiten.hpp"

namespace data = fnn::data;

namespace {

// Correlated data: x = z A with z ~ N(0, 1), so the covariance A^T A is far from diagonal.
fnn::matrix<float> correlated(fnn::index_t n, fnn::index_t f, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> a(std::size_t(f * f));
  for (auto& v : a) v = d(g);
  fnn::matrix<float> x(n, f);
  std::vector<float> z(static_cast<std::size_t>(f));
  for (fnn::index_t i = 0; i < n; ++i) {
    for (auto& v : z) v = d(g);
    for (fnn::index_t j = 0; j < f; ++j) {
      double s = 0;
      for (fnn::index_t k = 0; k < f; ++k) s += z[std::size_t(k)] * a[std::size_t(k * f + j)];
      x(i, j) = float(s + 3.0 * double(j));
    }
  }
  return x;
}

std::vector<double> covariance(const fnn::matrix<float>& y) {
  const auto n = y.rows(), f = y.cols();
  std::vector<double> m(std::size_t(f), 0.0), c(std::size_t(f * f), 0.0);
  for (fnn::index_t i = 0; i < n; ++i)
    for (fnn::index_t j = 0; j < f; ++j) m[std::size_t(j)] += y(i, j) / double(n);
  for (fnn::index_t i = 0; i < n; ++i)
    for (fnn::index_t r = 0; r < f; ++r)
      for (fnn::index_t k = 0; k < f; ++k)
        c[std::size_t(r * f + k)] += (y(i, r) - m[std::size_t(r)]) * (y(i, k) - m[std::size_t(k)]) / double(n);
  return c;
}

double max_off_identity(const std::vector<double>& c, fnn::index_t f) {
  double worst = 0;
  for (fnn::index_t r = 0; r < f; ++r)
    for (fnn::index_t k = 0; k < f; ++k) worst = std::max(worst, std::abs(c[std::size_t(r * f + k)] - (r == k ? 1.0 : 0.0)));
  return worst;
}

}  // namespace

BOOST_AUTO_TEST_CASE(jacobi_diagonalizes_a_known_matrix) {
  // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/sqrt 2 and (-1, 1)/sqrt 2 (sign: largest > 0).
  std::vector<double> a{2, 1, 1, 2}, v;
  const auto w = data::symmetric_eigen(a, 2, v);
  BOOST_TEST(std::abs(w[0] - 3) < 1e-12);
  BOOST_TEST(std::abs(w[1] - 1) < 1e-12);
  BOOST_TEST(std::abs(v[0] - std::sqrt(0.5)) < 1e-12);  // column 0 = (v[0], v[2])
  BOOST_TEST(std::abs(v[2] - std::sqrt(0.5)) < 1e-12);
  BOOST_TEST(std::abs(std::abs(v[1]) - std::sqrt(0.5)) < 1e-12);
}

BOOST_AUTO_TEST_CASE(whitened_training_data_has_identity_covariance) {
  const auto x = correlated(2000, 8, 1);
  for (auto kind : {data::whitening_kind::zca, data::whitening_kind::pca}) {
    const auto w = data::whitening::fit(x.view(), {.kind = kind, .eps = 0});
    fnn::matrix<float> y(x.rows(), w.out_features());
    w.apply(x.view(), y.view());
    BOOST_TEST(max_off_identity(covariance(y), 8) < 1e-4);
  }
}

BOOST_AUTO_TEST_CASE(pca_keeps_k_components_ordered_by_variance) {
  const auto x = correlated(1500, 6, 2);
  const auto w = data::whitening::fit(x.view(), {.kind = data::whitening_kind::pca, .components = 3});
  BOOST_TEST(w.out_features() == 3);
  const auto& l = w.eigenvalues();
  for (std::size_t i = 1; i < l.size(); ++i) BOOST_TEST(l[i - 1] >= l[i]);
  // The trace is preserved: the eigenvalues sum to the total variance.
  const auto c = covariance(x);
  double trace = 0, sum = 0;
  for (int j = 0; j < 6; ++j) trace += c[std::size_t(j * 6 + j)];
  for (double e : l) sum += e;
  BOOST_TEST(std::abs(trace - sum) < 1e-6 * trace);
  BOOST_TEST((w.explained_variance() > 0.5 && w.explained_variance() < 1.0));
  BOOST_CHECK_THROW(data::whitening::fit(x.view(), {.kind = data::whitening_kind::pca, .components = 7}),
                    fnn::value_error);
  BOOST_CHECK_THROW(data::whitening::fit(x.view(), {.kind = data::whitening_kind::zca, .components = 3}),
                    fnn::value_error);
}

BOOST_AUTO_TEST_CASE(agrees_with_numpy) {
  const std::string python = FNN_TEST_PYTHON;
  if (python.empty() || std::system((python + " -c 'import numpy' >/dev/null 2>&1").c_str()) != 0) {
    std::cout << "fnn_data_tests: SKIPPED numpy comparison: " << python << " cannot import numpy\n";
    return;
  }
  const fnn::index_t n = 300, f = 7, k = 4;
  const auto x = correlated(n, f, 3);
  const auto dir = std::filesystem::temp_directory_path() / ("fnn_whiten_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream o(dir / "x.f32", std::ios::binary);
    o.write(reinterpret_cast<const char*>(x.data()), std::streamsize(sizeof(float) * std::size_t(n * f)));
  }
  const std::string cmd = python + " " FNN_SOURCE_DIR "/tests/unit/data/whiten_numpy.py '" + (dir / "x.f32").string() +
                          "' " + std::to_string(n) + " " + std::to_string(f) + " " + std::to_string(k) + " '" +
                          (dir / "out.f64").string() + "'";
  BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
  std::vector<double> ref(std::size_t(f + n * k + n * f));
  {
    std::ifstream in(dir / "out.f64", std::ios::binary);
    in.read(reinterpret_cast<char*>(ref.data()), std::streamsize(sizeof(double) * ref.size()));
    BOOST_REQUIRE(in.gcount() == std::streamsize(sizeof(double) * ref.size()));
  }
  std::filesystem::remove_all(dir);
  const auto pca = data::whitening::fit(x.view(), {.kind = data::whitening_kind::pca, .components = k});
  const auto zca = data::whitening::fit(x.view(), {.kind = data::whitening_kind::zca});
  for (fnn::index_t j = 0; j < f; ++j)
    BOOST_TEST(std::abs(pca.eigenvalues()[std::size_t(j)] - ref[std::size_t(j)]) <= 1e-9 * std::abs(ref[0]));
  fnn::matrix<float> yp(n, k), yz(n, f);
  pca.apply(x.view(), yp.view());
  zca.apply(x.view(), yz.view());
  double worst_p = 0, worst_z = 0;
  for (fnn::index_t i = 0; i < n * k; ++i) worst_p = std::max(worst_p, std::abs(yp.data()[i] - ref[std::size_t(f + i)]));
  for (fnn::index_t i = 0; i < n * f; ++i)
    worst_z = std::max(worst_z, std::abs(yz.data()[i] - ref[std::size_t(f + n * k + i)]));
  BOOST_TEST(worst_p < 1e-4);
  BOOST_TEST(worst_z < 1e-4);
}
