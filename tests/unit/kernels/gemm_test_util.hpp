#pragma once
// Shared helpers of the kernel tests: random matrices in padded storage and an error bound for GEMM.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "fnn/kernels/gemm_reference.hpp"

namespace fnn::test {

using kernels::transpose;

// A rows x cols row-major matrix stored with leading dimension ld >= cols (padding filled with a sentinel).
template <class T>
struct padded_matrix {
  index_t rows, cols, ld;
  std::vector<T> data;
  padded_matrix(index_t r, index_t c, index_t pad, std::uint32_t seed, T sentinel = T(1e30))
      : rows(r), cols(c), ld(c + pad), data(static_cast<std::size_t>(std::max<index_t>(r * (c + pad), 1)), sentinel) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    for (index_t i = 0; i < r; ++i)
      for (index_t j = 0; j < c; ++j) at(i, j) = static_cast<T>(dist(gen));
  }
  T& at(index_t i, index_t j) { return data[static_cast<std::size_t>(i * ld + j)]; }
  const T& at(index_t i, index_t j) const { return data[static_cast<std::size_t>(i * ld + j)]; }
};

// Reference result in double, plus the bound |alpha| |op(A)| |op(B)| + |beta| |C0| that scales the rounding error.
template <class T>
struct gemm_oracle {
  std::vector<double> value, scale;
  gemm_oracle(transpose ta, transpose tb, index_t m, index_t n, index_t k, T alpha, const padded_matrix<T>& a,
              const padded_matrix<T>& b, T beta, const padded_matrix<T>& c0) {
    const auto widen = [](const padded_matrix<T>& x, bool absolute) {
      std::vector<double> out(x.data.size());
      for (std::size_t i = 0; i < out.size(); ++i) out[i] = absolute ? std::abs(double(x.data[i])) : double(x.data[i]);
      return out;
    };
    auto av = widen(a, false), bv = widen(b, false), cv = widen(c0, false);
    auto aa = widen(a, true), ba = widen(b, true), ca = widen(c0, true);
    kernels::gemm_reference<double>(ta, tb, m, n, k, alpha, av.data(), a.ld, bv.data(), b.ld, beta, cv.data(), c0.ld);
    kernels::gemm_reference<double>(ta, tb, m, n, k, std::abs(double(alpha)), aa.data(), a.ld, ba.data(), b.ld,
                                    std::abs(double(beta)), ca.data(), c0.ld);
    value = std::move(cv);
    scale = std::move(ca);
  }
};

// Largest |c - ref| / (eps * (k + 2) * scale) over the m x n block, and whether the padding kept its sentinel.
template <class T>
double gemm_error_ratio(const padded_matrix<T>& c, const gemm_oracle<T>& o, index_t k, bool* padding_ok = nullptr) {
  double worst = 0;
  const double eps = std::numeric_limits<T>::epsilon();
  for (index_t i = 0; i < c.rows; ++i)
    for (index_t j = 0; j < c.cols; ++j) {
      const auto idx = static_cast<std::size_t>(i * c.ld + j);
      const double err = std::abs(double(c.data[idx]) - o.value[idx]);
      const double bound = eps * double(k + 2) * o.scale[idx] + std::numeric_limits<T>::min();
      worst = std::max(worst, std::isfinite(err) ? err / bound : 1e300);
    }
  if (padding_ok) {
    *padding_ok = true;
    for (index_t i = 0; i < c.rows; ++i)
      for (index_t j = c.cols; j < c.ld; ++j)
        if (c.at(i, j) != T(1e30)) *padding_ok = false;
  }
  return worst;
}

inline const char* name(transpose t) { return t == transpose::no ? "N" : "T"; }

}  // namespace fnn::test
