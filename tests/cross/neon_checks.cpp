// fnn's SIMD kernels checked on whatever target this file is compiled for: built with the aarch64 cross
// compiler and run under qemu-aarch64 (NEON), and natively for baseline x86-64 (SSE2) and Haswell (AVX2).
// A plain program rather than Boost.Test: the host's Boost.Test library is not available for arm64.
//
//   neon_checks [--expect-arch NAME] [--self-test]
//
// Checks: the GEMM against a double-precision oracle (all transposes, alpha/beta, odd shapes and shapes
// crossing the register tile and the cache blocks, float and double, 1 vs 2 threads), its epilogues (apply,
// reduce, column_moments, the fused stages' stage_epilogue), simd helpers, every vectorized activation against
// double (the host tests' tolerances), fused vs unfused networks (outputs, gradients, buffers), and optimizer
// steps on spans against a double-precision loop.
//
// --self-test corrupts every compared result just before its comparison (one element, by ~1%, or the padding /
// a count) and succeeds only if every check then fails: a check that cannot fail is caught here.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/kernels/fused_block.hpp"
#include "fnn/kernels/gemm.hpp"
#include "fnn/optim/adam.hpp"
#include "fnn/optim/sgd.hpp"
#include "fnn/simd/math.hpp"
#include "fnn/simd/simd.hpp"

#if defined(__aarch64__) && !(defined(FNN_FORCE_SCALAR) && FNN_FORCE_SCALAR)
static_assert(fnn::simd::enabled, "the aarch64 build must take the SIMD paths");
static_assert(std::is_same_v<fnn::simd::arch, xsimd::neon64>, "the aarch64 build must select xsimd::neon64");
static_assert(fnn::simd::width<float> == 4 && fnn::simd::width<double> == 2);
static_assert(fnn::simd::vector_registers<fnn::simd::arch> == 32);
#endif

namespace {

using fnn::index_t;
using fnn::kernels::transpose;

// ---- the checker ------------------------------------------------------------------------------------------

// Index to container size (a function, not a functional cast, so declarations like v(sz(n)) are not vexing parses).
constexpr std::size_t sz(index_t v) { return static_cast<std::size_t>(v); }

bool self_test = false;  // corrupt every result before its comparison; every check must then fail

struct checker {
  const char* section = "";
  long checks = 0, failures = 0;
  void begin(const char* name) {
    section = name;
    std::printf("== %s\n", name);
    std::fflush(stdout);
  }
  // Records one check. In self-test mode the data was corrupted, so a passing check is the failure.
  template <class... A>
  bool expect(bool ok, const A&... what) {
    ++checks;
    const bool bad = self_test ? ok : !ok;
    if (bad) {
      ++failures;
      if (failures <= 40) {
        std::ostringstream os;
        (os << ... << what);
        std::printf("%s [%s] %s\n", self_test ? "NOT DETECTED" : "FAIL", section, os.str().c_str());
      }
    }
    return !bad;
  }
};
checker check;

// Corrupts one element of a result (the middle one) in self-test mode: x -> 1.01 x + 0.01 sign(x). That is far
// outside every tolerance used below (the loosest is a GEMM bound of ~3e-3 relative at k ~ 1000).
template <class T>
void tamper(T* p, std::size_t n) {
  if (!self_test || n == 0) return;
  T& x = p[n / 2];
  x = x * T(1.01) + (x < T(0) ? T(-0.01) : T(0.01));
}
template <class T>
void tamper(std::vector<T>& v) {
  tamper(v.data(), v.size());
}

template <class T>
const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}
const char* name(transpose t) { return t == transpose::no ? "N" : "T"; }
constexpr transpose both[] = {transpose::no, transpose::yes};
constexpr double pi = 3.14159265358979323846;

// ---- GEMM -------------------------------------------------------------------------------------------------

// A rows x cols row-major matrix with leading dimension cols + pad; the padding holds a sentinel.
template <class T>
struct padded {
  static constexpr T sentinel = T(1e30);
  index_t rows, cols, ld;
  std::vector<T> data;
  padded(index_t r, index_t c, index_t pad, std::uint32_t seed)
      : rows(r), cols(c), ld(c + pad), data(sz(std::max<index_t>(r * (c + pad), 1)), sentinel) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> d(-1.0, 1.0);
    for (index_t i = 0; i < r; ++i)
      for (index_t j = 0; j < c; ++j) at(i, j) = T(d(gen));
  }
  T& at(index_t i, index_t j) { return data[sz(i * ld + j)]; }
  const T& at(index_t i, index_t j) const { return data[sz(i * ld + j)]; }
  bool padding_intact() const {
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = cols; j < ld; ++j)
        if (at(i, j) != sentinel) return false;
    return true;
  }
  // Self-test: damages one value of the m x n block and, when there is padding, one padding element.
  void tamper_block() {
    if (!self_test) return;
    T& x = at(rows / 2, cols / 2);
    x = x * T(1.01) + (x < T(0) ? T(-0.01) : T(0.01));
    if (ld > cols) at(rows / 2, cols) = T(0);
  }
};

// The exact result in double and the bound |alpha| |op(A)| |op(B)| + |beta| |C0| that scales rounding errors.
template <class T>
struct oracle {
  std::vector<double> value, scale;
  oracle(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const padded<T>& a,
         const padded<T>& b, T beta, const padded<T>& c0) {
    const auto widen = [](const padded<T>& x, bool absolute) {
      std::vector<double> out(x.data.size());
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = absolute ? std::abs(double(x.data[i])) : double(x.data[i]);
      return out;
    };
    auto av = widen(a, false), bv = widen(b, false), aa = widen(a, true), ba = widen(b, true);
    value = widen(c0, false);
    scale = widen(c0, true);
    fnn::kernels::gemm_reference<double>(ta, tb, m, n, k, alpha, av.data(), a.ld, bv.data(), b.ld, beta,
                                         value.data(), c0.ld);
    fnn::kernels::gemm_reference<double>(ta, tb, m, n, k, std::abs(double(alpha)), aa.data(), a.ld, ba.data(), b.ld,
                                         std::abs(double(beta)), scale.data(), c0.ld);
  }
};

// Largest |c - exact| / (eps (k + 2) scale): <= 1 is within the classical bound of a k-term dot product.
template <class T>
double error_ratio(const padded<T>& c, const oracle<T>& o, index_t k) {
  const double eps = std::numeric_limits<T>::epsilon();
  double worst = 0;
  for (index_t i = 0; i < c.rows; ++i)
    for (index_t j = 0; j < c.cols; ++j) {
      const auto at = sz(i * c.ld + j);
      const double err = std::abs(double(c.data[at]) - o.value[at]);
      const double bound = eps * double(k + 2) * o.scale[at] + std::numeric_limits<T>::min();
      worst = std::max(worst, std::isfinite(err) ? err / bound : 1e300);
    }
  return worst;
}

template <class T>
void gemm_case(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, T beta, index_t pad,
               std::uint32_t seed = 1) {
  padded<T> a(ta == transpose::no ? m : k, ta == transpose::no ? k : m, pad, seed);
  padded<T> b(tb == transpose::no ? k : n, tb == transpose::no ? n : k, pad + 1, seed + 1);
  padded<T> c(m, n, pad + 2, seed + 2);
  const oracle<T> o(ta, tb, m, n, k, alpha, a, b, beta, c);
  fnn::kernels::gemm<T>(ta, tb, m, n, k, alpha, a.data.data(), a.ld, b.data.data(), b.ld, beta, c.data.data(), c.ld);
  c.tamper_block();
  const double ratio = error_ratio(c, o, k);
  check.expect(ratio <= 1.0 && c.padding_intact(), "gemm<", type_name<T>(), "> ", name(ta), name(tb), " m=", m,
               " n=", n, " k=", k, " alpha=", alpha, " beta=", beta, ": error ratio ", ratio,
               c.padding_intact() ? "" : ", padding overwritten");
}

template <class T>
void gemm_shapes(const std::vector<std::tuple<index_t, index_t, index_t>>& shapes, const std::vector<T>& alphas,
                 const std::vector<T>& betas) {
  for (auto [m, n, k] : shapes)
    for (transpose ta : both)
      for (transpose tb : both)
        for (T alpha : alphas)
          for (T beta : betas) gemm_case<T>(ta, tb, m, n, k, alpha, beta, 3);
}

void gemm_checks() {
  check.begin("gemm");
  using cfg = fnn::kernels::detail::gemm_config<float>;
  const index_t mr = cfg::mr, nr = cfg::nr;
  std::printf("   float tile %td x %td (%td registers of %td lanes), kc %td, mc %td, nc %td\n", mr, nr, cfg::nv, cfg::w,
              cfg::kc, cfg::mc, cfg::nc);
  gemm_shapes<float>({{1, 1, 1},
                      {1, 2, 3},
                      {2, 1, 1},
                      {3, 3, 3},
                      {3, 5, 7},
                      {17, 17, 17},
                      {13, 17, 19},
                      {37, 53, 71},
                      {mr, nr, 8},
                      {mr + 1, nr + 1, 9},
                      {mr - 1, nr - 1, 33},
                      {2 * mr, 2 * nr, 5},
                      {mr, nr + 3, 1},
                      {5, 3 * nr - 1, 2},
                      {3, 2 * nr + 3, 37}},  // m <= 4 with N,T: the dot-product path
                     {1.f, 0.5f, -2.f}, {0.f, 1.f, 0.75f});
  // k crosses the kc block (partial sums stored and re-read), m crosses mc, n crosses nc.
  gemm_shapes<float>({{mr + 3, nr + 5, cfg::kc + 1}, {7, 9, 2 * cfg::kc + 3}, {cfg::mc + 5, 17, 11},
                      {3, cfg::nc + 7, 6}},
                     {1.f, -0.5f}, {0.f, 0.5f});
  // The dense layers' products: Y = X W^T, dX = dY W, dW += dY^T X.
  for (auto [m, n, k] : std::vector<std::tuple<index_t, index_t, index_t>>{{256, 10, 1024}, {1, 256, 784}, {32, 256, 256}})
    for (auto [ta, tb, beta] : {std::tuple{transpose::no, transpose::yes, 0.f}, std::tuple{transpose::no, transpose::no, 0.f},
                                std::tuple{transpose::yes, transpose::no, 1.f}})
      gemm_case<float>(ta, tb, m, n, k, 1.f, beta, 16);

  using dcfg = fnn::kernels::detail::gemm_config<double>;
  std::printf("   double tile %td x %td, kc %td\n", dcfg::mr, dcfg::nr, dcfg::kc);
  gemm_shapes<double>({{1, 1, 1}, {3, 5, 7}, {37, 53, 71}, {20, 40, 300}, {dcfg::mr + 1, dcfg::nr + 1, dcfg::kc + 9}},
                      {1.0, -0.5}, {0.0, 1.0});

  // beta == 0 must not read C (NaN there must not leak); alpha == 0 or k == 0 must not read A or B.
  {
    const index_t m = 19, n = 45, k = 13;
    padded<float> a(m, k, 0, 3), b(k, n, 0, 4), c(m, n, 0, 5);
    const oracle<float> o(transpose::no, transpose::no, m, n, k, 1.f, a, b, 0.f, c);
    std::fill(c.data.begin(), c.data.end(), std::numeric_limits<float>::quiet_NaN());
    fnn::kernels::gemm<float>(transpose::no, transpose::no, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(), b.ld,
                              0.f, c.data.data(), c.ld);
    c.tamper_block();
    check.expect(error_ratio(c, o, k) <= 1.0, "beta == 0 read C (NaN leaked or wrong result)");
  }
  for (index_t k : {index_t(0), index_t(5)}) {
    const index_t m = 9, n = 33;
    std::vector<float> a(sz(m * 5), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> b(sz(5 * n), std::numeric_limits<float>::quiet_NaN());
    padded<float> c(m, n, 0, 7);
    const padded<float> c0 = c;
    fnn::kernels::gemm<float>(transpose::no, transpose::no, m, n, k, k == 0 ? 1.f : 0.f, a.data(), 5, b.data(), n,
                              0.5f, c.data.data(), c.ld);
    tamper(c.data);
    bool ok = true;
    for (std::size_t i = 0; i < c.data.size(); ++i) ok = ok && c.data[i] == 0.5f * c0.data[i];
    check.expect(ok, k == 0 ? "k == 0" : "alpha == 0", ": C must become beta * C");
  }

#if defined(FNN_HAS_OPENMP)
  // Same bits for 1 and 2 threads (the partition is aligned to the register tile, no split reductions).
  for (auto [ta, tb] : {std::pair{transpose::no, transpose::yes}, std::pair{transpose::yes, transpose::no}}) {
    const index_t m = 101, n = 151, k = 517;
    padded<float> a(ta == transpose::no ? m : k, ta == transpose::no ? k : m, 1, 11);
    padded<float> b(tb == transpose::no ? k : n, tb == transpose::no ? n : k, 2, 12);
    std::vector<float> results[2];
    for (int threads : {1, 2}) {
      fnn::set_num_threads(threads);
      const int got = self_test ? -1 : fnn::num_threads();
      check.expect(got == threads, "set_num_threads(", threads, ") ignored: ", got);
      std::vector<float> c(sz(m * n), 0.25f);
      fnn::kernels::gemm<float>(ta, tb, m, n, k, 1.5f, a.data.data(), a.ld, b.data.data(), b.ld, 1.f, c.data(), n);
      results[threads - 1] = std::move(c);
    }
    tamper(results[1]);
    check.expect(results[0] == results[1], "gemm ", name(ta), name(tb), " differs between 1 and 2 threads");
  }
  fnn::set_num_threads(0);
#else
  std::printf("   (no OpenMP in this build: thread-count checks skipped)\n");
#endif
}

// ---- simd helpers -----------------------------------------------------------------------------------------

template <class T>
void simd_helper_checks_of() {
  using V = typename fnn::kernels::detail::gemm_config<T>::vec;
  constexpr std::size_t w = fnn::simd::lanes_v<V>;
  std::vector<T> in(w * w), out(w * w);
  for (std::size_t i = 0; i < w * w; ++i) in[i] = T(i) + T(0.5);
  V r[w];
  for (std::size_t i = 0; i < w; ++i) r[i] = fnn::simd::load_as<V>(in.data() + i * w);
  fnn::simd::transpose(r);
  for (std::size_t i = 0; i < w; ++i) fnn::simd::store_as<V>(out.data() + i * w, r[i]);
  tamper(out);
  bool ok = true;
  for (std::size_t i = 0; i < w; ++i)
    for (std::size_t j = 0; j < w; ++j) ok = ok && out[i * w + j] == in[j * w + i];
  check.expect(ok, "simd::transpose<", type_name<T>(), "> of a ", w, "x", w, " block");

  // reduce_add: lanes chosen so every pairing order gives a different float result is impractical; exact sums.
  std::vector<T> lanes(w), got(1);
  for (std::size_t i = 0; i < w; ++i) lanes[i] = T(1 << i);
  got[0] = fnn::simd::reduce_add(fnn::simd::load_as<V>(lanes.data()));
  tamper(got);
  check.expect(got[0] == T((1 << w) - 1), "simd::reduce_add<", type_name<T>(), "> = ", got[0]);

  // max, fma, if_positive/if_non_negative lane by lane (including -0 and the lanes' order).
  std::vector<T> x(w), y(w), res(3 * w);
  for (std::size_t i = 0; i < w; ++i) x[i] = T(i % 2 ? -1.5 : 2.0) * T(i + 1), y[i] = T(i % 3) - T(1);
  if (w > 1) x[1] = T(-0.0);
  const V vx = fnn::simd::load_as<V>(x.data()), vy = fnn::simd::load_as<V>(y.data());
  fnn::simd::store_as(res.data(), fnn::simd::max(vx, vy));
  fnn::simd::store_as(res.data() + w, fnn::simd::fma(vx, vy, V(T(0.25))));
  fnn::simd::store_as(res.data() + 2 * w, fnn::simd::if_positive(vx, vy, V(T(7))));
  tamper(res);
  ok = true;
  for (std::size_t i = 0; i < w; ++i) {
    ok = ok && res[i] == std::max(x[i], y[i]);
    ok = ok && std::abs(double(res[w + i]) - (double(x[i]) * double(y[i]) + 0.25)) <= 1e-6;
    ok = ok && res[2 * w + i] == (x[i] > T(0) ? y[i] : T(7));
  }
  check.expect(ok, "simd::max / fma / if_positive<", type_name<T>(), "> lane by lane");
}

void simd_helper_checks() {
  check.begin("simd helpers");
  std::printf("   arch %s, %zu floats / %zu doubles per register\n", fnn::simd::arch_name(), fnn::simd::width<float>,
              fnn::simd::width<double>);
  simd_helper_checks_of<float>();
  simd_helper_checks_of<double>();
}

// ---- GEMM epilogues ---------------------------------------------------------------------------------------

// bias + leaky ReLU, plus the row index folded into the value to catch wrong row/col arguments.
struct bias_leaky_relu {
  const float* bias;
  template <class V>
  V apply(V v, index_t row, index_t col) const {
    const V x = v + fnn::simd::load_as<V>(bias + col);
    return fnn::simd::max(x, x * V(0.125f)) + V(static_cast<float>(row) * 1e3f);
  }
};

// Counts how often each element is reported and sums the columns per tile-row slot.
struct coverage_reducer {
  index_t m, n, ldc_seen = -1;
  bool rows_aligned = true;
  std::vector<int> hits;
  std::vector<double> slot_sums;
  coverage_reducer(index_t m_, index_t n_)
      : m(m_), n(n_), hits(sz(m_ * n_), 0),
        slot_sums(sz((m_ / fnn::kernels::gemm_tile_rows<float> + 1) * n_), 0.0) {}
  void reduce(const float* tile, index_t ldc, index_t row, index_t rows, index_t col, index_t cols) {
    ldc_seen = ldc;
    rows_aligned = rows_aligned && row % fnn::kernels::gemm_tile_rows<float> == 0;
    const index_t slot = row / fnn::kernels::gemm_tile_rows<float>;
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        ++hits[sz((row + i) * n + col + j)];
        slot_sums[sz(slot * n + col + j)] += tile[i * ldc + j];
      }
  }
};

double gelu_ref(double x) { return 0.5 * x * std::erfc(-x / std::sqrt(2.0)); }

void epilogue_checks() {
  check.begin("gemm epilogues");
  using cfg = fnn::kernels::detail::gemm_config<float>;
  const float eps = std::numeric_limits<float>::epsilon();

  // apply(): bias + activation on every transpose combination (with m <= 4 taking the dot path for N,T).
  for (auto [m, n, k] : std::vector<std::tuple<index_t, index_t, index_t>>{
           {37, 53, 71}, {64, 96, 300}, {1, 10, 784}, {5, 1, 3}, {3, 2 * cfg::nr + 3, 37}, {cfg::mr + 1, cfg::nr, cfg::kc + 7}})
    for (transpose ta : both)
      for (transpose tb : both) {
        padded<float> x(ta == transpose::no ? m : k, ta == transpose::no ? k : m, 2, 21);
        padded<float> w(tb == transpose::no ? k : n, tb == transpose::no ? n : k, 1, 22);
        padded<float> y(m, n, 3, 23);
        std::vector<float> bias(sz(n));
        for (index_t j = 0; j < n; ++j) bias[sz(j)] = 0.01f * float(j) - 0.2f;
        const oracle<float> o(ta, tb, m, n, k, 1.f, x, w, 0.5f, y);
        const bias_leaky_relu ep{bias.data()};
        fnn::kernels::gemm(ta, tb, m, n, k, 1.f, x.data.data(), x.ld, w.data.data(), w.ld, 0.5f, y.data.data(), y.ld,
                           ep);
        y.tamper_block();
        double worst = 0;  // in units of the bound: GEMM error (leaky ReLU is 1-Lipschitz) + rounding of the tail
        for (index_t i = 0; i < m; ++i)
          for (index_t j = 0; j < n; ++j) {
            const auto at = sz(i * y.ld + j);
            const double u = o.value[at] + double(bias[sz(j)]);
            const double want = std::max(u, 0.125 * u) + double(float(i) * 1e3f);
            const double bound = eps * double(k + 4) * (o.scale[at] + std::abs(double(bias[sz(j)]))) +
                                 2 * eps * std::abs(want) + 1e-30;
            worst = std::max(worst, std::abs(double(y.at(i, j)) - want) / bound);
          }
        check.expect(worst <= 1.0 && y.padding_intact(), "apply() bias+leaky_relu ", name(ta), name(tb), " m=", m,
                     " n=", n, " k=", k, ": error ratio ", worst);
      }

  // apply() runs once, after the last k block: a transform of partial sums would show (x -> 2x + 1).
  {
    const index_t m = 9, n = 40, k = 2 * cfg::kc + 5;
    padded<float> a(m, k, 0, 31), b(k, n, 0, 32), c(m, n, 0, 33);
    const oracle<float> o(transpose::no, transpose::no, m, n, k, 1.f, a, b, 0.f, c);
    fnn::kernels::gemm(transpose::no, transpose::no, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(), b.ld, 0.f,
                       c.data.data(), c.ld,
                       fnn::kernels::elementwise{[](auto v, index_t, index_t) { return v * 2.f + 1.f; }});
    tamper(c.data);
    double worst = 0;
    for (std::size_t i = 0; i < c.data.size(); ++i)
      worst = std::max(worst, std::abs(double(c.data[i]) - (2 * o.value[i] + 1)) /
                                  (2 * eps * double(k + 4) * o.scale[i] + 2 * eps * (2 * std::abs(o.value[i]) + 1)));
    check.expect(worst <= 1.0, "apply() after the last k block only: error ratio ", worst);
  }

  // reduce(): every stored element reported exactly once, with C's ldc and tile-aligned rows, for 1 and 2 threads
  // and for the dot-product path.
  for (int threads : {1, 2}) {
    fnn::set_num_threads(threads);
    for (auto [ta, m, n, k] : {std::tuple{transpose::yes, 2 * cfg::mr + 3, 3 * cfg::nr + 7, cfg::kc + 9},
                               std::tuple{transpose::no, index_t(3), 2 * cfg::nr + 3, index_t(37)},
                               std::tuple{transpose::no, index_t(1), index_t(5), index_t(4)}}) {
      const transpose tb = ta == transpose::yes ? transpose::no : transpose::yes;
      padded<float> a(ta == transpose::no ? m : k, ta == transpose::no ? k : m, 1, 41);
      padded<float> b(tb == transpose::no ? k : n, tb == transpose::no ? n : k, 0, 42);
      padded<float> c(m, n, 5, 43);
      coverage_reducer red(m, n);
      fnn::kernels::gemm(ta, tb, m, n, k, 1.f, a.data.data(), a.ld, b.data.data(), b.ld, 0.f, c.data.data(), c.ld,
                         red);
      if (self_test) ++red.hits[red.hits.size() / 2], red.ldc_seen = -2, red.rows_aligned = false;
      check.expect(red.ldc_seen == c.ld, "reduce() saw ldc ", red.ldc_seen, ", C has ", c.ld);
      check.expect(red.rows_aligned, "reduce() got a tile whose row is not a multiple of the tile rows");
      check.expect(std::all_of(red.hits.begin(), red.hits.end(), [](int h) { return h == 1; }),
                   "reduce() did not see every element exactly once (m=", m, " n=", n, " threads=", threads, ")");
      std::vector<double> got(sz(n), 0.0), want(sz(n), 0.0);
      for (std::size_t s = 0; s < red.slot_sums.size(); ++s) got[s % sz(n)] += red.slot_sums[s];
      for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) want[sz(j)] += c.at(i, j);
      tamper(got);
      double worst = 0;
      for (index_t j = 0; j < n; ++j) worst = std::max(worst, std::abs(got[sz(j)] - want[sz(j)]));
      check.expect(worst <= 1e-9, "reduce() tiles do not hold the stored values: column sums off by ", worst);
    }
  }

  // column_moments: per-column mean and biased variance of the stored output against a two-pass double
  // computation (offset data, where a float sum of squares would lose digits), identical for 1 and 2 threads.
  {
    const index_t m = 203, n = 77, k = 129;
    padded<float> x(m, k, 0, 51), w(n, k, 0, 52);
    for (auto& v : x.data) v += 3.f;
    std::vector<float> results[2][2];
    for (int threads : {1, 2}) {
      fnn::set_num_threads(threads);
      std::vector<float> y(sz(m * n)), mean(sz(n)), var(sz(n));
      fnn::kernels::column_moments<float> stats(m, n, fnn::kernels::gemm_tile_rows<float>);
      fnn::kernels::gemm(transpose::no, transpose::yes, m, n, k, 1.f, x.data.data(), x.ld, w.data.data(), w.ld, 0.f,
                         y.data(), n, stats);
      stats.finish(mean.data(), var.data());
      results[threads - 1][0] = mean;
      results[threads - 1][1] = var;
      tamper(mean);
      tamper(var);
      double worst_mean = 0, worst_var = 0;
      for (index_t j = 0; j < n; ++j) {
        double mu = 0, m2 = 0;
        for (index_t i = 0; i < m; ++i) mu += y[sz(i * n + j)];
        mu /= double(m);
        for (index_t i = 0; i < m; ++i) m2 += std::pow(y[sz(i * n + j)] - mu, 2);
        worst_mean = std::max(worst_mean, std::abs(mean[sz(j)] - mu) / (1 + std::abs(mu)));
        worst_var = std::max(worst_var, std::abs(var[sz(j)] - m2 / double(m)) / (m2 / double(m)));
      }
      check.expect(worst_mean <= 1e-5 && worst_var <= 1e-5, "column_moments (threads=", threads,
                   "): relative error mean ", worst_mean, ", var ", worst_var);
    }
    tamper(results[1][1]);
    check.expect(results[0][0] == results[1][0] && results[0][1] == results[1][1],
                 "column_moments differ between 1 and 2 threads");
  }

  // The fused stages' epilogue: + bias, side store of the pre-activation, GELU (through the vector and the scalar
  // function pointers), batch statistics of the result.
  for (auto [m, n, k] : std::vector<std::tuple<index_t, index_t, index_t>>{{37, 53, 71}, {130, 33, 17}, {3, 33, 17}}) {
    padded<float> x(m, k, 0, 71), w(n, k, 0, 72), y(m, n, 2, 73);
    std::vector<float> bias(sz(n)), pre(sz(m * n));
    for (index_t j = 0; j < n; ++j) bias[sz(j)] = 0.05f * float(j % 7) - 0.1f;
    const oracle<float> o(transpose::no, transpose::yes, m, n, k, 1.f, x, w, 0.f, y);
    fnn::kernels::column_moments<float> stats(m, n, fnn::kernels::gemm_tile_rows<float>);
    fnn::kernels::stage_epilogue<float> ep{.bias = bias.data(), .pre = pre.data(), .ld_pre = n, .moments = &stats};
    ep = fnn::kernels::with_activation<fnn::act::gelu_fn>(ep);
    fnn::kernels::gemm(transpose::no, transpose::yes, m, n, k, 1.f, x.data.data(), x.ld, w.data.data(), w.ld, 0.f,
                       y.data.data(), y.ld, ep);
    std::vector<float> mean(sz(n)), var(sz(n));
    stats.finish(mean.data(), var.data());
    y.tamper_block();
    tamper(pre);
    tamper(var);
    double worst_pre = 0, worst_y = 0, worst_var = 0;
    for (index_t j = 0; j < n; ++j) {
      double mu = 0, m2 = 0;
      for (index_t i = 0; i < m; ++i) mu += y.at(i, j);
      mu /= double(m);
      for (index_t i = 0; i < m; ++i) m2 += std::pow(y.at(i, j) - mu, 2);
      worst_var = std::max(worst_var, std::abs(var[sz(j)] - m2 / double(m)) / (m2 / double(m) + 1e-12));
      for (index_t i = 0; i < m; ++i) {
        const auto at = sz(i * y.ld + j);
        const double u = o.value[at] + double(bias[sz(j)]);
        const double bound = eps * double(k + 4) * (o.scale[at] + 1);
        worst_pre = std::max(worst_pre, std::abs(double(pre[sz(i * n + j)]) - u) / bound);
        // GELU's slope is below 1.13, plus its own 4e-6 relative accuracy.
        worst_y = std::max(worst_y, std::abs(double(y.at(i, j)) - gelu_ref(u)) /
                                        (1.13 * bound + 4e-6 * std::max(std::abs(gelu_ref(u)), 1e-5)));
      }
    }
    check.expect(worst_pre <= 1.0, "stage_epilogue pre-activation m=", m, " n=", n, ": error ratio ", worst_pre);
    check.expect(worst_y <= 1.0 && y.padding_intact(), "stage_epilogue GELU output m=", m, " n=", n, ": error ratio ",
                 worst_y);
    check.expect(worst_var <= 1e-5, "stage_epilogue batch variance m=", m, " n=", n, ": relative error ", worst_var);
  }
  fnn::set_num_threads(0);
}

// ---- activations ------------------------------------------------------------------------------------------

// f and f' through simd::batch<float> against double on a fine grid over [-10, 10] with the host test's
// tolerances (tests/unit/network/fused.cpp): f relative (absolute below 1e-5), f' absolute below 1.
template <class Fn, class Ref, class DRef>
void activation_accuracy(Ref ref, DRef dref, double tol_f, double tol_df) {
  constexpr std::size_t w = fnn::simd::width<float>;
  std::vector<float> x;
  for (int i = 0; i <= 20000; ++i) x.push_back(-10.0f + 20.0f * float(i) / 20000.0f);
  // Beyond the host test: a log grid out to |x| = 1e4 (exp's overflow and underflow thresholds near 88 and
  // 103 included), where the vector exp/erfc/tanh must saturate cleanly instead of returning inf or NaN.
  for (double a = 1e-30; a <= 1e4; a *= 1.1) x.push_back(float(a)), x.push_back(float(-a));
  for (float a : {87.3f, 88.0f, 88.72f, 89.0f, 103.0f, 104.0f}) x.push_back(a), x.push_back(-a);
  while (x.size() % w != 0) x.push_back(0.0f);
  const std::size_t n = x.size();
  std::vector<float> y(n), dy(n);
  for (std::size_t i = 0; i < n; i += w) {
    if constexpr (fnn::simd::enabled) {
      const auto v = fnn::simd::load(x.data() + i);
      const auto fv = Fn::f(v);
      fnn::simd::store(y.data() + i, fv);
      fnn::simd::store(dy.data() + i, Fn::df(v, fv));
    } else {
      y[i] = Fn::f(x[i]);
      dy[i] = Fn::df(x[i], y[i]);
    }
  }
  tamper(y);
  tamper(dy);
  double worst_f = 0, worst_df = 0, at_f = 0, at_df = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double xr = double(x[i]);
    const double ef = std::abs(double(y[i]) - ref(xr)) / std::max(std::abs(ref(xr)), 1e-5);
    const double edf = std::abs(double(dy[i]) - dref(xr)) / std::max(std::abs(dref(xr)), 1.0);
    if (!(ef <= worst_f)) worst_f = ef, at_f = xr;  // NaN counts as the worst
    if (!(edf <= worst_df)) worst_df = edf, at_df = xr;
  }
  std::printf("   %-12s max error f %.3g (x=%.4g), f' %.3g (x=%.4g)\n", std::string(Fn::name).c_str(), worst_f, at_f,
              worst_df, at_df);
  check.expect(worst_f < tol_f, Fn::name, ": f error ", worst_f, " at x=", at_f, " (tolerance ", tol_f, ")");
  check.expect(worst_df < tol_df, Fn::name, ": f' error ", worst_df, " at x=", at_df, " (tolerance ", tol_df, ")");
}

void activation_checks() {
  check.begin("activations");
  using namespace fnn::act;
  auto phi = [](double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * pi); };
  auto Phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  activation_accuracy<gelu_fn>([&](double x) { return x * Phi(x); }, [&](double x) { return Phi(x) + x * phi(x); },
                               4e-6, 4e-6);
  auto tg = [](double x) { return std::tanh(std::sqrt(2 / pi) * (x + 0.044715 * x * x * x)); };
  activation_accuracy<gelu_tanh_fn>(
      [&](double x) { return 0.5 * x * (1 + tg(x)); },
      [&](double x) {
        return 0.5 * (1 + tg(x)) + 0.5 * x * (1 - tg(x) * tg(x)) * std::sqrt(2 / pi) * (1 + 3 * 0.044715 * x * x);
      },
      4e-5, 4e-5);
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  activation_accuracy<sigmoid_fn>(sig, [&](double x) { return sig(x) * (1 - sig(x)); }, 4e-6, 4e-6);
  activation_accuracy<swish_fn>([&](double x) { return x * sig(x); },
                                [&](double x) { return sig(x) * (1 + x * (1 - sig(x))); }, 4e-6, 4e-6);
  activation_accuracy<tanh_fn>([](double x) { return std::tanh(x); },
                               [](double x) { return 1 - std::tanh(x) * std::tanh(x); }, 4e-6, 4e-6);
  activation_accuracy<elu_fn<1.0>>([](double x) { return x > 0 ? x : std::expm1(x); },
                                   [](double x) { return x > 0 ? 1.0 : std::exp(x); }, 4e-6, 4e-6);
  const double a = selu_fn::alpha, s = selu_fn::scale;
  activation_accuracy<selu_fn>([&](double x) { return x > 0 ? s * x : s * a * std::expm1(x); },
                               [&](double x) { return x > 0 ? s : s * a * std::exp(x); }, 4e-6, 4e-6);
  activation_accuracy<relu_fn>([](double x) { return x > 0 ? x : 0.0; }, [](double x) { return x > 0 ? 1.0 : 0.0; },
                               1e-7, 1e-7);
  activation_accuracy<leaky_relu_fn<0.1>>([](double x) { return x > 0 ? x : 0.1 * x; },
                                          [](double x) { return x > 0 ? 1.0 : 0.1; }, 1e-7, 1e-7);

  // The fused batch-norm + activation pass (kernels/fused_block.hpp) over a width with a tail, against doubles.
  {
    const index_t rows = 5, cols = 4 * index_t(fnn::simd::width<float>) + 3;
    std::mt19937 gen(5);
    std::normal_distribution<double> d(0.0, 2.0);
    std::vector<float> z(sz(rows * cols)), scale(sz(cols)), shift(sz(cols)),
        y(sz(rows * cols));
    for (auto* v : {&z, &scale, &shift})
      for (auto& e : *v) e = float(d(gen));
    fnn::kernels::affine_activation<gelu_fn>(rows, cols, z.data(), cols, scale.data(), shift.data(), y.data(), cols);
    tamper(y);
    double worst = 0;
    for (index_t i = 0; i < rows; ++i)
      for (index_t j = 0; j < cols; ++j) {
        const auto at = sz(i * cols + j);
        const double u = double(z[at]) * scale[sz(j)] + shift[sz(j)];
        worst = std::max(worst, std::abs(y[at] - gelu_ref(u)) / std::max(std::abs(gelu_ref(u)), 1.0));
      }
    check.expect(worst < 1e-5, "affine_activation<gelu> (", cols, " columns): error ", worst);
  }
}

// ---- fused vs unfused networks ----------------------------------------------------------------------------

template <class T>
fnn::matrix<T> random_matrix(index_t rows, index_t cols, std::uint32_t seed, double scale = 1.0) {
  fnn::matrix<T> m(rows, cols);
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, scale);
  for (T& v : m.flat()) v = T(d(g));
  return m;
}

std::vector<std::int32_t> random_labels(std::size_t n, int classes, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int> d(0, classes - 1);
  std::vector<std::int32_t> l(n);
  for (auto& v : l) v = d(g);
  return l;
}

// max |a - b| / max(1, max |b|).
double scaled_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return 1e300;
  double diff = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(double(a[i]) - double(b[i]));
    diff = std::isfinite(e) ? std::max(diff, e) : 1e300;
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

std::vector<float> copy_of(fnn::const_matrix_view<float> v) {
  std::vector<float> out;
  for (index_t i = 0; i < v.rows(); ++i) out.insert(out.end(), v.row(i), v.row(i) + v.cols());
  return out;
}

template <class Net>
std::vector<std::vector<float>> grads_of(Net& net) {
  std::vector<std::vector<float>> g;
  net.for_each_parameter([&](auto& p) { g.emplace_back(p.grad.begin(), p.grad.end()); });
  return g;
}
template <class Net>
std::vector<std::vector<float>> buffers_of(Net& net) {
  std::vector<std::vector<float>> g;
  net.for_each_buffer([&](auto& b) {
    if (!b.counter) g.emplace_back(b.value.begin(), b.value.end());
    else g.push_back({float(*b.counter)});
  });
  return g;
}

void expect_close(std::vector<std::vector<float>> a, const std::vector<std::vector<float>>& b, double tol,
                  const std::string& what) {
  const std::size_t count = std::min(a.size(), b.size());
  if (self_test) a.emplace_back();
  check.expect(a.size() == b.size(), what, ": ", a.size(), " arrays vs ", b.size());
  for (std::size_t i = 0; i < count; ++i) {
    tamper(a[i]);
    const double d = scaled_difference(a[i], b[i]);
    check.expect(d < tol, what, " #", i, ": scaled difference ", d, " (tolerance ", tol, ")");
  }
}

// Trains the fused and the unfused network side by side (plain SGD) and compares everything after each step.
template <class Fused, class Unfused>
void compare_training(const char* label, index_t batch, std::uint32_t seed, double tol = 2e-4) {
  static_assert(std::is_same_v<typename Fused::policy, fnn::fused> &&
                std::is_same_v<typename Unfused::policy, fnn::unfused>);
  Fused f{fnn::seed{seed}};
  Unfused u{fnn::seed{seed}};
  const fnn::loss::softmax_cross_entropy ce;
  const std::string tag = std::string(label) + " batch " + std::to_string(batch);
  for (int step = 0; step < 3; ++step) {
    const std::string at = tag + " step " + std::to_string(step);
    const auto x = random_matrix<float>(batch, index_t(Fused::in_features), seed + 10 * step, 1.5);
    const auto y = random_labels(sz(batch), int(Fused::out_features), seed + 10 * step + 1);
    auto yf = copy_of(f.forward(x.view(), fnn::mode::train));
    const auto yu_view = u.forward(x.view(), fnn::mode::train);
    const auto yu = copy_of(yu_view);
    tamper(yf);
    const double dy = scaled_difference(yf, yu);
    check.expect(dy < tol, at, ": forward output differs by ", dy);
    fnn::matrix<float> g(batch, index_t(Fused::out_features));
    ce(yu_view, y, g.view());
    f.zero_grad();
    u.zero_grad();
    f.backward(g.view(), true);
    u.backward(g.view(), true);
    expect_close(grads_of(f), grads_of(u), tol, at + ": parameter gradient");
    auto dxf = copy_of(f.input_gradient());
    tamper(dxf);
    const double dx = scaled_difference(dxf, copy_of(u.input_gradient()));
    check.expect(dx < tol, at, ": input gradient differs by ", dx);
    expect_close(buffers_of(f), buffers_of(u), tol, at + ": buffer");
    const auto sgd = [](auto& net) {
      net.for_each_parameter([](auto& p) {
        for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= 0.05f * p.grad[i];
      });
    };
    sgd(f);
    sgd(u);
  }
  const auto x = random_matrix<float>(batch, index_t(Fused::in_features), seed + 99);
  auto ef = copy_of(f.infer(x.view()));
  tamper(ef);
  const double de = scaled_difference(ef, copy_of(u.infer(x.view())));
  check.expect(de < tol, tag, ": eval output differs by ", de);
}

template <class P, class Act>
using four_stage_net = fnn::network<P, float, fnn::input<17>, fnn::dense<33>, fnn::batch_norm, Act, fnn::dense<16>,
                                    Act, fnn::batch_norm, Act, fnn::dense<5>>;

void network_checks() {
  check.begin("fused vs unfused networks");
  using namespace fnn;
  // The user-facing spelling: dense + batch_norm + gelu, fused vs unfused_sequential.
  using seq_f = sequential<input<20>, dense<37>, batch_norm, gelu, dense<19>, batch_norm, gelu, dense<7>>;
  using seq_u = unfused_sequential<input<20>, dense<37>, batch_norm, gelu, dense<19>, batch_norm, gelu, dense<7>>;
  static_assert(seq_f::plan::size == 3);
  compare_training<seq_f, seq_u>("sequential dense+bn+gelu", 29, 1);
  // Every stage kind (dense_bn_act, dense_act, bn_act, dense_only); batches around the tile rows, a batch of 3
  // (looser: batch norm of 3 samples amplifies float rounding, as in the host test) and a large one.
  for (index_t batch : {3, 9, 37, 130})
    compare_training<four_stage_net<fused, gelu>, four_stage_net<unfused, gelu>>("four stages gelu", batch, 5,
                                                                                 batch <= 3 ? 2e-3 : 2e-4);
  compare_training<four_stage_net<fused, swish>, four_stage_net<unfused, swish>>("four stages swish", 37, 3);
  compare_training<four_stage_net<fused, fnn::tanh>, four_stage_net<unfused, fnn::tanh>>("four stages tanh", 37, 3);
  // Widths 1, around and above the register width; a bias-free dense before batch norm.
  using narrow_f = network<fused, float, input<1>, dense<1>, batch_norm, gelu, dense<15>, relu, dense<2>>;
  using narrow_u = network<unfused, float, input<1>, dense<1>, batch_norm, gelu, dense<15>, relu, dense<2>>;
  compare_training<narrow_f, narrow_u>("narrow", 9, 7);
  using wide_f = network<fused, float, input<64>, dense<129>::without_bias, batch_norm, swish, dense<48>, fnn::tanh,
                         dense<10>>;
  using wide_u = network<unfused, float, input<64>, dense<129>::without_bias, batch_norm, swish, dense<48>, fnn::tanh,
                         dense<10>>;
  compare_training<wide_f, wide_u>("wide", 64, 9);
}

// ---- optimizers -------------------------------------------------------------------------------------------

// torch.optim's formulas in double: clip by value, clip by global norm, maximize, L2 (not for AdamW), L1.
struct reference_step {
  enum class kind { sgd, adam, adamw } type;
  double lr = 0.05, wd = 0, l1 = 0, clip_value = 0, max_norm = 0, momentum = 0, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  bool maximize = false, nesterov = false, amsgrad = false;
  std::vector<double> s1{}, s2{}, s3{};
  int t = 0;

  void step(std::vector<double>& p, std::vector<double> g) {
    if (s1.empty()) s1.assign(p.size(), 0.0), s2.assign(p.size(), 0.0), s3.assign(p.size(), 0.0);
    ++t;
    if (clip_value > 0)
      for (auto& x : g) x = std::clamp(x, -clip_value, clip_value);
    if (max_norm > 0) {
      double total = 0;
      for (double x : g) total += x * x;
      const double coef = std::min(1.0, max_norm / (std::sqrt(total) + 1e-6));
      for (auto& x : g) x *= coef;
    }
    for (std::size_t i = 0; i < p.size(); ++i) {
      double d = maximize ? -g[i] : g[i];
      if (type != kind::adamw) d += wd * p[i];
      d += l1 * double((0 < p[i]) - (p[i] < 0));
      if (type == kind::sgd) {
        if (momentum != 0) {
          s1[i] = t == 1 ? d : momentum * s1[i] + d;
          d = nesterov ? d + momentum * s1[i] : s1[i];
        }
        p[i] -= lr * d;
        continue;
      }
      if (type == kind::adamw) p[i] *= 1 - lr * wd;
      s1[i] = b1 * s1[i] + (1 - b1) * d;
      s2[i] = b2 * s2[i] + (1 - b2) * d * d;
      double vhat = s2[i];
      if (amsgrad) vhat = s3[i] = std::max(s3[i], s2[i]);
      const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
      p[i] -= lr / bc1 * s1[i] / (std::sqrt(vhat) / std::sqrt(bc2) + eps);
    }
  }
};

template <class Opt>
void optimizer_case(Opt opt, reference_step ref, const std::string& what, std::size_t n) {
  std::mt19937 gen(1234);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<float> p(n);
  std::vector<double> rp(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = float(d(gen)), rp[i] = double(p[i]);
  double worst = 0;
  for (int s = 0; s < 12; ++s) {
    std::vector<float> g(n);
    std::vector<double> rg(n);
    for (std::size_t i = 0; i < n; ++i) g[i] = float((0.5 + s) * d(gen)), rg[i] = double(g[i]);
    opt.step(std::span<float>(p), std::span<const float>(g));
    ref.step(rp, rg);
    for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(p[i]) - rp[i]) / (1 + std::abs(rp[i])));
  }
  std::vector<float> last(p);
  tamper(last);
  for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(last[i]) - rp[i]) / (1 + std::abs(rp[i])));
  check.expect(worst <= 2e-5, what, " n=", n, ": error ", worst, " after 12 steps (tolerance 2e-5)");
}

void optimizer_checks() {
  check.begin("optimizers on spans");
  namespace opt = fnn::optim;
  using K = reference_step::kind;
  struct variant {
    float wd = 0, l1 = 0, clip_value = 0, max_norm = 0;
    bool maximize = false;
  };
  for (const variant v : {variant{}, variant{.wd = 0.1f}, variant{.wd = 0.05f, .l1 = 0.02f, .clip_value = 1.f,
                                                                  .max_norm = 2.f, .maximize = true}})
    for (std::size_t n : {sz(1), sz(37), sz(1000)}) {
      const std::string tag = " wd=" + std::to_string(v.wd) + (v.l1 > 0 ? " l1 clip maximize" : "");
      const reference_step base{.type = K::adamw, .lr = 0.05, .wd = double(v.wd), .l1 = double(v.l1),
                                .clip_value = double(v.clip_value), .max_norm = double(v.max_norm),
                                .b1 = double(0.9f), .b2 = double(0.999f), .eps = double(1e-8f), .maximize = v.maximize};
      for (bool ams : {false, true}) {
        auto r = base;
        r.amsgrad = ams;
        optimizer_case(opt::adamw({.lr = 0.05f, .weight_decay = v.wd, .amsgrad = ams, .maximize = v.maximize,
                                   .l1 = v.l1, .max_grad_norm = v.max_norm, .clip_value = v.clip_value}),
                       r, std::string("adamw") + (ams ? " amsgrad" : "") + tag, n);
        r.type = K::adam;
        optimizer_case(opt::adam({.lr = 0.05f, .weight_decay = v.wd, .amsgrad = ams, .maximize = v.maximize,
                                  .l1 = v.l1, .max_grad_norm = v.max_norm, .clip_value = v.clip_value}),
                       r, std::string("adam") + (ams ? " amsgrad" : "") + tag, n);
      }
      auto r = base;
      r.type = K::sgd, r.momentum = double(0.8f), r.nesterov = true;
      optimizer_case(opt::sgd({.lr = 0.05f, .momentum = 0.8f, .weight_decay = v.wd, .nesterov = true,
                               .maximize = v.maximize, .l1 = v.l1, .max_grad_norm = v.max_norm,
                               .clip_value = v.clip_value}),
                     r, "sgd nesterov" + tag, n);
    }
}

}  // namespace

int main(int argc, char** argv) {
  const char* expect_arch = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--self-test") == 0) {
      self_test = true;
    } else if (std::strcmp(argv[i], "--expect-arch") == 0 && i + 1 < argc) {
      expect_arch = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--expect-arch NAME] [--self-test]\n", argv[0]);
      return 2;
    }
  }
#if defined(__x86_64__) && defined(__AVX2__)
  // A Haswell build on an older CPU: skipped (CTest SKIP_RETURN_CODE 77), not an illegal instruction.
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("skipped: this CPU lacks AVX2/FMA, which the build targets\n");
    return 77;
  }
#endif
  const auto start = std::chrono::steady_clock::now();
  std::printf("fnn SIMD checks: arch %s (simd %s), %zu floats per register, %d thread(s)%s\n", fnn::simd::arch_name(),
              fnn::simd::enabled ? "on" : "off", fnn::simd::width<float>, fnn::num_threads(),
              self_test ? ", SELF-TEST (every check must fail)" : "");
  if (expect_arch && !self_test && std::strcmp(fnn::simd::arch_name(), expect_arch) != 0) {
    std::printf("FAIL: built for arch %s, expected %s\n", fnn::simd::arch_name(), expect_arch);
    return 1;
  }
  simd_helper_checks();
  gemm_checks();
  epilogue_checks();
  activation_checks();
  network_checks();
  optimizer_checks();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (self_test) {
    std::printf("%ld of %ld checks detected the injected fault (%.1f s)\n", check.checks - check.failures,
                check.checks, seconds);
  } else {
    std::printf("%ld checks, %ld failed (%.1f s)\n", check.checks, check.failures, seconds);
  }
  return check.failures == 0 && check.checks > 0 ? 0 : 1;
}
