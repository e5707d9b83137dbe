#pragma once
// The layers of a deploy model. Each is a type with compile-time widths, an aggregate `params` (fixed-size
// arrays, so a model can be a constexpr object in flash) and a static run(params, x, y, rows) over `rows`
// contiguous samples. No allocation, no exceptions, no I/O: these are the kernels of the scalar path.
#include <cmath>
#include <cstddef>

#include "fnn/core/diagnostics.hpp"
#include "fnn/deploy/activations.hpp"

namespace fnn::deploy {

namespace detail {
// Four independent partial sums, combined as (s0 + s1) + (s2 + s3): a fixed summation order (the same bits on
// every target built with -ffp-contract=off) that still leaves the compiler independent chains to pipeline or
// vectorize.
template <std::size_t N>
inline float dot(const float* w, const float* x) noexcept {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  std::size_t k = 0;
  for (; k + 4 <= N; k += 4) {
    s0 += w[k] * x[k];
    s1 += w[k + 1] * x[k + 1];
    s2 += w[k + 2] * x[k + 2];
    s3 += w[k + 3] * x[k + 3];
  }
  if constexpr (N % 4 > 0) s0 += w[k] * x[k];
  if constexpr (N % 4 > 1) s1 += w[k + 1] * x[k + 1];
  if constexpr (N % 4 > 2) s2 += w[k + 2] * x[k + 2];
  return (s0 + s1) + (s2 + s3);
}

#if defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON))
// On a SIMD host, B outputs at once with the four partial sums of each in one 4-lane vector (GCC's vector
// extension: no xsimd, no intrinsics). Each lane sees the very same multiplies and adds in the same order as
// dot<N>, so the bits do not depend on the blocking; the B independent chains and the shared x load are what
// make it fast (784-256-256-10 at batch 1 on this project's Xeon: 120 µs one output at a time, 14 µs blocked;
// bench/results/deploy.md).
inline constexpr std::size_t output_block = 8;
using lanes4 = float __attribute__((vector_size(16)));

template <std::size_t N, std::size_t B>
inline void dot_block(const float* w, const float* x, float* out) noexcept {
  lanes4 acc[B] = {};
  std::size_t k = 0;
  for (; k + 4 <= N; k += 4) {
    lanes4 xv;
    __builtin_memcpy(&xv, x + k, sizeof xv);
    for (std::size_t b = 0; b < B; ++b) {
      lanes4 wv;
      __builtin_memcpy(&wv, w + b * N + k, sizeof wv);
      acc[b] += wv * xv;
    }
  }
  for (std::size_t b = 0; b < B; ++b) {
    float s[4] = {acc[b][0], acc[b][1], acc[b][2], acc[b][3]};
    for (std::size_t j = 0; j < N % 4; ++j) s[j] += w[b * N + k + j] * x[k + j];
    out[b] = (s[0] + s[1]) + (s[2] + s[3]);
  }
}
#else
inline constexpr std::size_t output_block = 1;  // a microcontroller: one output at a time, no spills
#endif
}  // namespace detail

// y = Act(x W^T + b), W [Out, In] as torch.nn.Linear; a batch norm after it is already folded into W and b.
template <std::size_t In, std::size_t Out, class Act = act::identity>
struct dense final {
  static_assert(In > 0 && Out > 0, "fnn: deploy::dense needs positive widths");
  static constexpr std::size_t in_features = In, out_features = Out;
  using activation = Act;
  struct params {
    float weight[Out * In];
    float bias[Out];
  };
  static constexpr std::size_t parameter_count = Out * In + Out;
  static void run(const params& p, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t r = 0; r < rows; ++r, x += In, y += Out) {
      std::size_t o = 0;
#if defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON))
      constexpr std::size_t B = detail::output_block;
      for (; o + B <= Out; o += B) {
        float sums[B];
        detail::dot_block<In, B>(p.weight + o * In, x, sums);
        for (std::size_t b = 0; b < B; ++b) y[o + b] = Act::f(p.bias[o + b] + sums[b]);
      }
#endif
      for (; o < Out; ++o) y[o] = Act::f(p.bias[o] + detail::dot<In>(p.weight + o * In, x));
    }
  }
};

// An activation with no dense layer right before it (after a layer_norm, say).
template <std::size_t F, class Act>
struct activation final {
  static constexpr std::size_t in_features = F, out_features = F;
  struct params {};
  static constexpr std::size_t parameter_count = 0;
  static void run(const params&, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t i = 0; i < rows * F; ++i) y[i] = Act::f(x[i]);
  }
};

// A batch norm with no dense layer before it, folded to y = x * scale + shift.
template <std::size_t F>
struct scale_shift final {
  static constexpr std::size_t in_features = F, out_features = F;
  struct params {
    float scale[F];
    float shift[F];
  };
  static constexpr std::size_t parameter_count = 2 * F;
  static void run(const params& p, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t r = 0; r < rows; ++r, x += F, y += F)
      for (std::size_t j = 0; j < F; ++j) y[j] = x[j] * p.scale[j] + p.shift[j];
  }
};

// Layer normalization (eps 1e-5). Statistics in float, two passes: the Cortex-M4F FPU is single precision, and
// double would be software-emulated there.
template <std::size_t F>
struct layer_norm final {
  static constexpr std::size_t in_features = F, out_features = F;
  struct params {
    float gamma[F];
    float beta[F];
  };
  static constexpr std::size_t parameter_count = 2 * F;
  static void run(const params& p, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t r = 0; r < rows; ++r, x += F, y += F) {
      float mean = 0.0f, m2 = 0.0f;
      for (std::size_t j = 0; j < F; ++j) mean += x[j];
      mean /= float(F);
      for (std::size_t j = 0; j < F; ++j) m2 += (x[j] - mean) * (x[j] - mean);
      const float rstd = 1.0f / std::sqrt(m2 / float(F) + 1e-5f);
      for (std::size_t j = 0; j < F; ++j) y[j] = p.gamma[j] * (x[j] - mean) * rstd + p.beta[j];
    }
  }
};

// Group normalization, torch.nn.GroupNorm(G, F) on [rows, F] (eps 1e-5): layer_norm's computation over each of
// the G runs of F / G consecutive features, then the per-feature affine. group_norm<F, 1> computes what
// layer_norm<F> does, in the same order.
template <std::size_t F, std::size_t G>
struct group_norm final {
  static_assert(
      diagnostics::holds<typename diagnostics::deploy_group_norm_groups<G>::template must_divide_in_features<F>>);
  static constexpr std::size_t in_features = F, out_features = F, groups = G;
  // A valid stand-in after the diagnostic (G = 0 would divide by zero), so that only it is reported.
  static constexpr std::size_t group_size = G > 0 && F % G == 0 ? F / G : F;
  struct params {
    float gamma[F];
    float beta[F];
  };
  static constexpr std::size_t parameter_count = 2 * F;
  static void run(const params& p, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t r = 0; r < rows; ++r, x += F, y += F)
      for (std::size_t j0 = 0; j0 < F; j0 += group_size) {
        float mean = 0.0f, m2 = 0.0f;
        for (std::size_t j = j0; j < j0 + group_size; ++j) mean += x[j];
        mean /= float(group_size);
        for (std::size_t j = j0; j < j0 + group_size; ++j) m2 += (x[j] - mean) * (x[j] - mean);
        const float rstd = 1.0f / std::sqrt(m2 / float(group_size) + 1e-5f);
        for (std::size_t j = j0; j < j0 + group_size; ++j) y[j] = p.gamma[j] * (x[j] - mean) * rstd + p.beta[j];
      }
  }
};

// Parametric ReLU with one slope shared by all features (torch.nn.PReLU()).
template <std::size_t F>
struct prelu final {
  static constexpr std::size_t in_features = F, out_features = F;
  struct params {
    float slope;
  };
  static constexpr std::size_t parameter_count = 1;
  static void run(const params& p, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t i = 0; i < rows * F; ++i) y[i] = x[i] > 0.0f ? x[i] : p.slope * x[i];
  }
};

// Maxout over groups of Pieces consecutive features.
template <std::size_t In, std::size_t Pieces>
struct maxout final {
  static_assert(diagnostics::holds<typename diagnostics::deploy_maxout_pieces<Pieces>::template must_divide_in_features<In>>);
  static constexpr std::size_t in_features = In, out_features = In / Pieces;
  struct params {};
  static constexpr std::size_t parameter_count = 0;
  static void run(const params&, const float* x, float* y, std::size_t rows) noexcept {
    for (std::size_t i = 0; i < rows * out_features; ++i) {
      const float* g = x + i * Pieces;
      float best = g[0];
      for (std::size_t q = 1; q < Pieces; ++q) best = g[q] > best ? g[q] : best;
      y[i] = best;
    }
  }
};

}  // namespace fnn::deploy
