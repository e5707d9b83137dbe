#pragma once
// Running the fusion plan (network/plan.hpp). Each stage reads the activation slot before its first
// layer and writes the slot after its last one; parameters stay in the layers, so naming, optimizers
// and checkpoints do not know whether a network runs fused.
//
// What a fused stage keeps for backward, per kind (slot k = output of layer k - 1):
//   dense_only    x, y                   backward: db = colsum(dy), dW += dy^T x, dx = dy W
//   dense_act     x, z (side-stored by the GEMM epilogue), y
//   dense_bn_act  x, z (GEMM output, bias skipped: it cancels in train-mode batch norm), y; batch mean/rstd
//   dense_ln_act  x, z (GEMM output with bias), y; per-sample mean/rstd
//   bn_act        x, y; batch mean/rstd
// Eval mode: dense_bn_act folds the batch norm into the product on its output side, y = Fn(s * (W x) + b'),
// s = gamma / sqrt(running_var + eps), b' = (b - running_mean) * s + beta: s and b' are recomputed from the
// live parameters on every call (O(features)) and W is read as it is, so there is no folded copy of the
// weights to rebuild per call or to keep in step with the parameters (see batch_norm_eval_coefficients).
// Up to kernels::gemv_max_rows samples, the dense stages run a matrix-vector product that streams W once
// (kernels/gemv.hpp) with s, b' and the activation applied as it stores; larger batches run the GEMM, then
// one scale/shift/activation pass. A backward after an eval-mode forward (gradient checking does that)
// re-runs the stage's reference layers first: it is not a training path, and it keeps the fused code to
// the two paths that matter.
#include <array>
#include <cmath>
#include <cstddef>
#include <tuple>
#include <vector>

#include "fnn/core/tensor.hpp"
#include "fnn/kernels/epilogue.hpp"
#include "fnn/kernels/fused_block.hpp"
#include "fnn/kernels/gemm.hpp"
#include "fnn/kernels/gemv.hpp"
#include "fnn/layers/layer.hpp"
#include "fnn/network/plan.hpp"

namespace fnn::detail {

// Per-stage scratch, reused from step to step (it only grows).
template <class T>
struct stage_workspace {
  buffer<T> mean, rstd, scale, shift, sum_du, sum_du_xhat;
  buffer<T> dz_scale, dz_z_scale, dz_offset;  // the batch-norm input gradient as an a_transform of du
  std::vector<double> mean_d, var_d;
  index_t rows_total = 0;  // rows behind the batch statistics: every process's with SyncBatchNorm
  matrix<T> du;
  kernels::column_moments<T> moments;
};

template <class T, class Layers, std::size_t Slots>
struct stage_context {
  using value_type = T;
  Layers& layers;
  std::array<matrix<T>, Slots>& acts;
  std::array<matrix<T>, Slots>& grads;
  random_engine& rng;
};

template <std::size_t I, class Ctx>
auto& layer_at(Ctx& c) {
  return std::get<I>(c.layers);
}

// Reference forward of layers [First, First + Count), each into its own slot.
template <std::size_t First, std::size_t Count, class Ctx>
void reference_forward(Ctx& c, mode m) {
  [&]<std::size_t... K>(std::index_sequence<K...>) {
    (([&] {
       auto& layer = layer_at<First + K>(c);
       c.acts[First + K + 1].resize(c.acts[First].rows(), index_t(layer.out_features));
       layer.forward(c.acts[First + K].view(), c.acts[First + K + 1].view(), m, c.rng);
     }()),
     ...);
  }(std::make_index_sequence<Count>{});
}

template <std::size_t First, std::size_t Count, class Ctx>
void reference_backward(Ctx& c, mode m, bool want_dx) {
  const index_t n = c.acts[First].rows();
  [&]<std::size_t... K>(std::index_sequence<K...>) {
    (([&] {
       constexpr std::size_t i = First + Count - 1 - K;
       auto& layer = layer_at<i>(c);
       matrix_view<typename Ctx::value_type> dx;
       if (i > First || want_dx) {
         c.grads[i].resize(n, index_t(layer.in_features));
         dx = c.grads[i].view();
       }
       layer.backward(c.acts[i].view(), c.acts[i + 1].view(), c.grads[i + 1].view(), dx, m);
     }()),
     ...);
  }(std::make_index_sequence<Count>{});
}


// Backward after an eval-mode forward of a fused stage (gradient checking does that): the fused eval
// forward keeps only what inference needs, so the stage's layers run their reference forward, then
// their reference backward.
template <std::size_t First, std::size_t Count, class Ctx>
void rerun_as_reference(Ctx& c, bool want_dx) {
  reference_forward<First, Count>(c, mode::eval);
  reference_backward<First, Count>(c, mode::eval, want_dx);
}

// The activation functor of an activation layer type.
template <class Layer>
using activation_of = typename Layer::function;

// Y = X W^T through the stages' one epilogue type, X the slot before the dense layer.
template <class T, class Dense>
void dense_gemm(const_matrix_view<T> x, matrix_view<T> out, const T* weight, kernels::stage_epilogue<T> ep) {
  using kernels::transpose;
  kernels::gemm(transpose::no, transpose::yes, x.rows(), index_t(Dense::out_features), index_t(Dense::in_features),
                T(1), x.data(), x.ld(), weight, index_t(Dense::in_features), T(0), out.data(), out.ld(), ep);
}

// The same in eval mode: up to gemv_max_rows samples, a matrix-vector product that reads W once, in place.
template <class T, class Dense, class Ep>
void dense_eval_product(const_matrix_view<T> x, matrix_view<T> out, const T* weight, const Ep& ep) {
  if (x.rows() <= kernels::gemv_max_rows) {
    kernels::gemv(x.rows(), index_t(Dense::out_features), index_t(Dense::in_features), x.data(), x.ld(), weight,
                  index_t(Dense::in_features), out.data(), out.ld(), ep);
  } else {
    dense_gemm<T, Dense>(x, out, weight, ep);
  }
}

// Eval-mode batch norm after a dense layer as ws.scale and ws.shift: bn(x W^T + b) = (x W^T) * scale + shift,
// scale = gamma / sqrt(running_var + eps), shift = (b - running_mean) * scale + beta (b = 0 without a bias).
// Recomputed from the live parameters on every call: nothing derived from them outlives the call, so no way of
// changing W, b, gamma, beta or the running statistics (an optimizer, a checkpoint load, the mutable accessors,
// a span kept from for_each_parameter) can leave a stale fold behind (tests/unit/network/eval_fold.cpp).
template <class T, class BN>
void batch_norm_eval_coefficients(BN& bn, const T* bias, stage_workspace<T>& ws) {
  for (std::size_t j = 0; j < BN::out_features; ++j) {
    const T s = T(double(bn.gamma()[j]) / std::sqrt(double(bn.running_var()[j]) + BN::eps));
    ws.scale[j] = s;
    ws.shift[j] = ((bias ? bias[j] : T(0)) - bn.running_mean()[j]) * s + bn.beta()[j];
  }
}

// dW += dz^T x (unless W is frozen), dx = dz W (when wanted); the empty stage epilogue keeps to the same GEMM
// instantiation. With dz_tf, the products use dz_tf applied to `dz` (applied while packing it).
template <class T, class Dense>
void dense_backward_products(Dense& d, const_matrix_view<T> x, const_matrix_view<T> dz, matrix<T>* dx,
                             const kernels::a_transform<T>* dz_tf = nullptr) {
  using kernels::transpose;
  const index_t in = index_t(Dense::in_features), out = index_t(Dense::out_features);
  kernels::stage_epilogue<T> none;
  if (!d.freezing().parameter(0))
    kernels::gemm(transpose::yes, transpose::no, out, in, dz.rows(), T(1), dz.data(), dz.ld(), x.data(), x.ld(), T(1),
                  d.weight_grad().data(), in, none, dz_tf);
  if (dx) {
    dx->resize(dz.rows(), in);
    kernels::gemm(transpose::no, transpose::no, dz.rows(), in, out, T(1), dz.data(), dz.ld(), d.weight().data(), in,
                  T(0), dx->data(), in, none, dz_tf);
  }
}

template <class T>
void resize_features(stage_workspace<T>& ws, std::size_t f) {
  for (auto* b : {&ws.mean, &ws.rstd, &ws.scale, &ws.shift, &ws.sum_du, &ws.sum_du_xhat, &ws.dz_scale,
                  &ws.dz_z_scale, &ws.dz_offset})
    b->resize(f);
  ws.mean_d.resize(f);
  ws.var_d.resize(f);
}

// Batch statistics (train mode) -> running statistics, scale and shift. `offset` is added to the
// recorded running mean: the dense bias the fused GEMM skipped.
template <class T, class BN>
void batch_norm_train_coefficients(BN& bn, stage_workspace<T>& ws, index_t n, const T* offset) {
  const std::size_t f = BN::out_features;
  for (std::size_t j = 0; j < f; ++j) {
    ws.rstd[j] = T(1.0 / std::sqrt(double(ws.var_d[j]) + BN::eps));
    ws.mean[j] = T(ws.mean_d[j]);
    ws.scale[j] = bn.gamma()[j] * ws.rstd[j];
    ws.shift[j] = bn.beta()[j] - ws.mean[j] * ws.scale[j];
    ws.mean_d[j] += offset ? double(offset[j]) : 0.0;
  }
  bn.update_running_statistics(n, ws.mean_d.data(), ws.var_d.data());
}

// SyncBatchNorm: this process's batch moments (mean_d, var_d of n rows) become those of every process's rows.
// Returns the row count the statistics stand for.
template <class T, class BN>
index_t merge_batch_moments(BN& bn, stage_workspace<T>& ws, index_t n) {
  ws.rows_total = n;
  if (auto* sync = bn.statistics_sync()) ws.rows_total = sync->merge_moments(n, ws.mean_d, ws.var_d);
  return ws.rows_total;
}

// SyncBatchNorm: the backward sums over every process's rows, rescaled by n / rows_total so that the input
// gradient kernels, which divide by their own n, divide the global sums by the global count.
template <class T, class BN>
void share_backward_sums(BN& bn, stage_workspace<T>& ws, index_t n) {
  auto* sync = bn.statistics_sync();
  if (!sync) return;
  const std::size_t f = ws.sum_du.size();
  std::vector<double> sums(2 * f);
  for (std::size_t j = 0; j < f; ++j) {
    sums[j] = double(ws.sum_du[j]);
    sums[f + j] = double(ws.sum_du_xhat[j]);
  }
  sync->sum(sums);
  const double share = double(n) / double(ws.rows_total);
  for (std::size_t j = 0; j < f; ++j) {
    ws.sum_du[j] = T(sums[j] * share);
    ws.sum_du_xhat[j] = T(sums[f + j] * share);
  }
}

template <class T>
void moments_to_workspace(const kernels::column_moments<T>& mom, stage_workspace<T>& ws) {
  mom.finish(ws.mean.data(), ws.rstd.data());  // rstd holds the variance until batch_norm_train_coefficients
  for (std::size_t j = 0; j < ws.mean.size(); ++j) {
    ws.mean_d[j] = double(ws.mean[j]);
    ws.var_d[j] = double(ws.rstd[j]);
  }
}

// The gradient of a frozen parameter (bit k of the layer's freeze_state) is not accumulated.
template <class Layer>
bool trains(const Layer& layer, unsigned k) {
  return !layer.freezing().parameter(k);
}

// First backward pass of batch norm + activation in train mode: du = dy * Fn' into ws.du, and the beta and
// gamma gradients.
template <class Fn, class T, class BN>
void batch_norm_activation_reduce(BN& bn, stage_workspace<T>& ws, const_matrix_view<T> z, const_matrix_view<T> y,
                                  const_matrix_view<T> dy) {
  const index_t n = z.rows(), f = z.cols();
  ws.du.resize(n, f);
  kernels::affine_activation_backward_reduce<Fn>(n, f, z.data(), z.ld(), y.data(), y.ld(), dy.data(), dy.ld(),
                                                  ws.scale.data(), ws.shift.data(), ws.mean.data(), ws.rstd.data(),
                                                  ws.du.data(), f, ws.sum_du.data(), ws.sum_du_xhat.data());
  for (index_t j = 0; j < f; ++j) {
    if (trains(bn, 1)) bn.beta_grad()[std::size_t(j)] += ws.sum_du[std::size_t(j)];
    if (trains(bn, 0)) bn.gamma_grad()[std::size_t(j)] += ws.sum_du_xhat[std::size_t(j)];
  }
  share_backward_sums(bn, ws, n);  // after the parameter gradients, which keep this process's share
}

// Backward of a frozen batch norm (+ activation) in train mode, which normalized with its running statistics
// (torch: a BatchNorm1d in eval() inside a training model): du = dy * Fn' into ws.du and the gamma/beta
// gradients of the parameters that train; the input gradient is then du * ws.scale (gamma / sqrt(var + eps)).
// `offset` is what the running mean is measured against z from (the dense bias the product left out).
template <class Fn, class T, class BN>
void frozen_batch_norm_activation_reduce(BN& bn, stage_workspace<T>& ws, const_matrix_view<T> z,
                                         const_matrix_view<T> y, const_matrix_view<T> dy, const T* offset) {
  const index_t n = z.rows(), f = z.cols();
  for (std::size_t j = 0; j < std::size_t(f); ++j) {
    ws.rstd[j] = T(1.0 / std::sqrt(double(bn.running_var()[j]) + BN::eps));
    ws.mean[j] = bn.running_mean()[j] - (offset ? offset[j] : T(0));
  }
  ws.du.resize(n, f);
  kernels::affine_activation_backward_reduce<Fn>(n, f, z.data(), z.ld(), y.data(), y.ld(), dy.data(), dy.ld(),
                                                  ws.scale.data(), ws.shift.data(), ws.mean.data(), ws.rstd.data(),
                                                  ws.du.data(), f, ws.sum_du.data(), ws.sum_du_xhat.data());
  for (std::size_t j = 0; j < std::size_t(f); ++j) {
    if (trains(bn, 1)) bn.beta_grad()[j] += ws.sum_du[j];
    if (trains(bn, 0)) bn.gamma_grad()[j] += ws.sum_du_xhat[j];
  }
}

// Backward of batch norm + activation in train mode, without a product to fuse the input gradient into: two
// passes; dz goes to `dz` (may be ws.du).
template <class Fn, class T, class BN>
void batch_norm_activation_backward(BN& bn, stage_workspace<T>& ws, const_matrix_view<T> z, const_matrix_view<T> y,
                                    const_matrix_view<T> dy, matrix_view<T> dz) {
  const index_t n = z.rows(), f = z.cols();
  batch_norm_activation_reduce<Fn, T>(bn, ws, z, y, dy);
  kernels::batch_norm_input_gradient(n, f, ws.du.data(), f, z.data(), z.ld(), bn.gamma().data(), ws.mean.data(),
                                     ws.rstd.data(), ws.sum_du.data(), ws.sum_du_xhat.data(), dz.data(), dz.ld());
}

template <class Stage>
struct stage_runner;

template <std::size_t First, std::size_t Count>
struct stage_runner<plan::stage<plan::stage_kind::single, First, Count>> {
  template <class Ctx, class T>
  static void forward(Ctx& c, stage_workspace<T>&, mode m) {
    reference_forward<First, Count>(c, m);
  }
  template <class Ctx, class T>
  static void backward(Ctx& c, stage_workspace<T>&, mode m, bool want_dx) {
    reference_backward<First, Count>(c, m, want_dx);
  }
};

template <std::size_t First>
struct stage_runner<plan::stage<plan::stage_kind::dense_only, First, 1>> {
  template <class Ctx, class T>
  static void forward(Ctx& c, stage_workspace<T>&, mode m) {
    auto& d = layer_at<First>(c);
    c.acts[First + 1].resize(c.acts[First].rows(), index_t(d.out_features));
    using D = std::remove_reference_t<decltype(d)>;
    kernels::stage_epilogue<T> ep;
    if constexpr (D::has_bias) ep.bias = d.bias().data();
    if (m == mode::eval)
      return dense_eval_product<T, D>(c.acts[First].view(), c.acts[First + 1].view(), d.weight().data(), ep);
    dense_gemm<T, D>(c.acts[First].view(), c.acts[First + 1].view(), d.weight().data(), ep);
  }
  template <class Ctx, class T>
  static void backward(Ctx& c, stage_workspace<T>&, mode, bool want_dx) {
    auto& d = layer_at<First>(c);
    const auto dy = c.grads[First + 1].view();
    if constexpr (std::remove_reference_t<decltype(d)>::has_bias)
      if (trains(d, 1)) kernels::add_column_sums(dy.rows(), dy.cols(), dy.data(), dy.ld(), d.bias_grad().data());
    dense_backward_products<T>(d, c.acts[First].view(), dy, want_dx ? &c.grads[First] : nullptr);
  }
};

template <std::size_t First>
struct stage_runner<plan::stage<plan::stage_kind::dense_act, First, 2>> {
  template <class Ctx, class T>
  static void forward(Ctx& c, stage_workspace<T>&, mode m) {
    auto& d = layer_at<First>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 1>(c))>>;
    const index_t n = c.acts[First].rows(), f = index_t(d.out_features);
    c.acts[First + 1].resize(n, f);
    c.acts[First + 2].resize(n, f);
    using D = std::remove_reference_t<decltype(d)>;
    kernels::stage_epilogue<T> ep;
    if constexpr (D::has_bias) ep.bias = d.bias().data();
    ep.pre = c.acts[First + 1].data();
    ep.ld_pre = f;
    // The pre-activation is stored in eval mode too: this stage's backward reads it whatever the mode.
    if (m == mode::eval)
      return dense_eval_product<T, D>(c.acts[First].view(), c.acts[First + 2].view(), d.weight().data(),
                                      kernels::with_activation<Fn>(ep));
    dense_gemm<T, D>(c.acts[First].view(), c.acts[First + 2].view(), d.weight().data(),
                     kernels::with_activation<Fn>(ep));
  }
  template <class Ctx, class T>
  static void backward(Ctx& c, stage_workspace<T>& ws, mode, bool want_dx) {
    auto& d = layer_at<First>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 1>(c))>>;
    const auto z = c.acts[First + 1].view();
    const auto y = c.acts[First + 2].view();
    const auto dy = c.grads[First + 2].view();
    ws.du.resize(z.rows(), z.cols());
    T* db = nullptr;
    if constexpr (std::remove_reference_t<decltype(d)>::has_bias)
      if (trains(d, 1)) db = d.bias_grad().data();
    kernels::activation_backward<Fn>(z.rows(), z.cols(), z.data(), z.ld(), y.data(), y.ld(), dy.data(), dy.ld(),
                                     ws.du.data(), z.cols(), db);
    dense_backward_products<T>(d, c.acts[First].view(), ws.du.view(), want_dx ? &c.grads[First] : nullptr);
  }
};

template <std::size_t First>
struct stage_runner<plan::stage<plan::stage_kind::dense_bn_act, First, 3>> {
  template <class Ctx, class T>
  static void forward(Ctx& c, stage_workspace<T>& ws, mode m) {
    auto& d = layer_at<First>(c);
    auto& bn = layer_at<First + 1>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 2>(c))>>;
    constexpr bool has_bias = std::remove_reference_t<decltype(d)>::has_bias;
    const index_t n = c.acts[First].rows(), f = index_t(d.out_features), in = index_t(d.in_features);
    resize_features(ws, std::size_t(f));
    c.acts[First + 3].resize(n, f);
    // A frozen batch norm in train mode runs the eval path through the GEMM, which keeps z for backward.
    if (m == mode::eval || bn.freezing().statistics()) {
      const T* bias = nullptr;
      if constexpr (has_bias) bias = d.bias().data();
      batch_norm_eval_coefficients(bn, bias, ws);
      const auto x = c.acts[First].view();
      if (m == mode::eval && n <= kernels::gemv_max_rows) {
        kernels::gemv(n, f, in, x.data(), x.ld(), d.weight().data(), in, c.acts[First + 3].data(), f,
                      kernels::affine_activation_epilogue<T, Fn>{ws.scale.data(), ws.shift.data()});
      } else {
        // The plain GEMM (the instantiation training uses), then one pass: scale, shift, activation.
        c.acts[First + 1].resize(n, f);
        dense_gemm<T, std::remove_reference_t<decltype(d)>>(x, c.acts[First + 1].view(), d.weight().data(),
                                                            kernels::stage_epilogue<T>{});
        kernels::affine_activation<Fn>(n, f, c.acts[First + 1].data(), f, ws.scale.data(), ws.shift.data(),
                                       c.acts[First + 3].data(), f);
      }
      return;
    }
    c.acts[First + 1].resize(n, f);
    ws.moments.reset(n, f, kernels::gemm_tile_rows<T>);
    kernels::stage_epilogue<T> ep;
    ep.moments = &ws.moments;
    dense_gemm<T, std::remove_reference_t<decltype(d)>>(c.acts[First].view(), c.acts[First + 1].view(),
                                                        d.weight().data(), ep);
    moments_to_workspace(ws.moments, ws);
    const T* offset = nullptr;
    if constexpr (has_bias) offset = d.bias().data();
    batch_norm_train_coefficients(bn, ws, merge_batch_moments(bn, ws, n), offset);
    kernels::affine_activation<Fn>(n, f, c.acts[First + 1].data(), f, ws.scale.data(), ws.shift.data(),
                                   c.acts[First + 3].data(), f);
  }
  template <class Ctx, class T>
  static void backward(Ctx& c, stage_workspace<T>& ws, mode m, bool want_dx) {
    if (m == mode::eval) return rerun_as_reference<First, 3>(c, want_dx);
    auto& d = layer_at<First>(c);
    auto& bn = layer_at<First + 1>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 2>(c))>>;
    const auto z = c.acts[First + 1].view();
    if (bn.freezing().statistics()) return frozen_backward(c, ws, want_dx);
    // One pass over memory (du and the beta/gamma gradients); dz = transform of du is formed while the two
    // products pack it.
    batch_norm_activation_reduce<Fn, T>(bn, ws, z, c.acts[First + 3].view(), c.grads[First + 3].view());
    kernels::batch_norm_input_gradient_coefficients(z.rows(), z.cols(), bn.gamma().data(), ws.rstd.data(),
                                                    ws.sum_du.data(), ws.sum_du_xhat.data(), ws.dz_scale.data(),
                                                    ws.dz_z_scale.data(), ws.dz_offset.data());
    const kernels::a_transform<T> dz{z.data(), z.ld(), ws.dz_scale.data(), ws.dz_z_scale.data(), ws.mean.data(),
                                     ws.dz_offset.data()};
    // The bias gradient is exactly zero: a constant shift before train-mode batch norm cancels.
    dense_backward_products<T>(d, c.acts[First].view(), ws.du.view(), want_dx ? &c.grads[First] : nullptr, &dz);
  }

 private:
  // The batch norm is frozen: it normalized with its running statistics, so dz = du * scale (read by the two
  // products while they pack du) and the bias does not cancel: db = scale * sum du.
  template <class Ctx, class T>
  static void frozen_backward(Ctx& c, stage_workspace<T>& ws, bool want_dx) {
    auto& d = layer_at<First>(c);
    auto& bn = layer_at<First + 1>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 2>(c))>>;
    const auto z = c.acts[First + 1].view();
    const T* bias = nullptr;
    if constexpr (std::remove_reference_t<decltype(d)>::has_bias) bias = d.bias().data();
    frozen_batch_norm_activation_reduce<Fn, T>(bn, ws, z, c.acts[First + 3].view(), c.grads[First + 3].view(), bias);
    const std::size_t f = std::size_t(z.cols());
    if constexpr (std::remove_reference_t<decltype(d)>::has_bias)
      if (trains(d, 1))
        for (std::size_t j = 0; j < f; ++j) d.bias_grad()[j] += ws.scale[j] * ws.sum_du[j];
    for (std::size_t j = 0; j < f; ++j) ws.dz_z_scale[j] = ws.dz_offset[j] = T(0);
    const kernels::a_transform<T> dz{z.data(), z.ld(), ws.scale.data(), ws.dz_z_scale.data(), ws.mean.data(),
                                     ws.dz_offset.data()};
    dense_backward_products<T>(d, c.acts[First].view(), ws.du.view(), want_dx ? &c.grads[First] : nullptr, &dz);
  }
};

// dense + layer_norm + activation: the GEMM with the bias in its epilogue (z, kept for backward), then one pass
// per row that normalizes, applies the affine and the activation. Layer norm has no running statistics, so eval
// and train mode run alike (and a backward after an eval forward is the fused one).
template <std::size_t First>
struct stage_runner<plan::stage<plan::stage_kind::dense_ln_act, First, 3>> {
  template <class Ctx, class T>
  static void forward(Ctx& c, stage_workspace<T>& ws, mode) {
    auto& d = layer_at<First>(c);
    auto& ln = layer_at<First + 1>(c);
    using D = std::remove_reference_t<decltype(d)>;
    using LN = std::remove_reference_t<decltype(ln)>;
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 2>(c))>>;
    const index_t n = c.acts[First].rows(), f = index_t(d.out_features);
    c.acts[First + 1].resize(n, f);
    c.acts[First + 3].resize(n, f);
    ws.mean.resize(std::size_t(n));
    ws.rstd.resize(std::size_t(n));
    kernels::stage_epilogue<T> ep;
    if constexpr (D::has_bias) ep.bias = d.bias().data();
    dense_gemm<T, D>(c.acts[First].view(), c.acts[First + 1].view(), d.weight().data(), ep);
    kernels::layer_norm_activation<Fn>(n, f, c.acts[First + 1].data(), f, ln.gamma().data(), ln.beta().data(),
                                       LN::eps, ws.mean.data(), ws.rstd.data(), c.acts[First + 3].data(), f);
  }
  template <class Ctx, class T>
  static void backward(Ctx& c, stage_workspace<T>& ws, mode, bool want_dx) {
    auto& d = layer_at<First>(c);
    auto& ln = layer_at<First + 1>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 2>(c))>>;
    const auto z = c.acts[First + 1].view();
    const auto y = c.acts[First + 3].view();
    const auto dy = c.grads[First + 3].view();
    const index_t n = z.rows(), f = z.cols();
    ws.du.resize(n, f);
    // A frozen gamma or beta accumulates into scratch when the other trains (one pass computes both), and
    // neither is computed when both are frozen.
    T* dgamma = trains(ln, 0) ? ln.gamma_grad().data() : nullptr;
    T* dbeta = trains(ln, 1) ? ln.beta_grad().data() : nullptr;
    if ((dgamma == nullptr) != (dbeta == nullptr)) {
      ws.sum_du.resize(std::size_t(f));
      for (T& v : ws.sum_du) v = T(0);
      (dgamma ? dbeta : dgamma) = ws.sum_du.data();
    }
    kernels::layer_norm_activation_backward<Fn>(n, f, z.data(), z.ld(), y.data(), y.ld(), dy.data(), dy.ld(),
                                                ln.gamma().data(), ln.beta().data(), ws.mean.data(), ws.rstd.data(),
                                                ws.du.data(), f, dgamma, dbeta);
    if constexpr (std::remove_reference_t<decltype(d)>::has_bias)
      if (trains(d, 1)) kernels::add_column_sums(n, f, ws.du.data(), f, d.bias_grad().data());
    dense_backward_products<T>(d, c.acts[First].view(), ws.du.view(), want_dx ? &c.grads[First] : nullptr);
  }
};

template <std::size_t First>
struct stage_runner<plan::stage<plan::stage_kind::bn_act, First, 2>> {
  template <class Ctx, class T>
  static void forward(Ctx& c, stage_workspace<T>& ws, mode m) {
    auto& bn = layer_at<First>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 1>(c))>>;
    const auto x = c.acts[First].view();
    const index_t n = x.rows(), f = x.cols();
    resize_features(ws, std::size_t(f));
    c.acts[First + 2].resize(n, f);
    if (m == mode::eval || bn.freezing().statistics()) {
      for (std::size_t j = 0; j < std::size_t(f); ++j) {
        ws.scale[j] = T(double(bn.gamma()[j]) / std::sqrt(double(bn.running_var()[j]) + bn.eps));
        ws.shift[j] = bn.beta()[j] - bn.running_mean()[j] * ws.scale[j];
      }
    } else {
      // rstd holds the variance until batch_norm_train_coefficients.
      expr::column_mean_variance(expr::matrix(x), ws.mean.data(), ws.rstd.data());
      for (std::size_t j = 0; j < std::size_t(f); ++j) {
        ws.mean_d[j] = double(ws.mean[j]);
        ws.var_d[j] = double(ws.rstd[j]);
      }
      batch_norm_train_coefficients(bn, ws, merge_batch_moments(bn, ws, n), static_cast<const T*>(nullptr));
    }
    kernels::affine_activation<Fn>(n, f, x.data(), x.ld(), ws.scale.data(), ws.shift.data(), c.acts[First + 2].data(), f);
  }
  template <class Ctx, class T>
  static void backward(Ctx& c, stage_workspace<T>& ws, mode m, bool want_dx) {
    if (m == mode::eval) return rerun_as_reference<First, 2>(c, want_dx);
    auto& bn = layer_at<First>(c);
    using Fn = activation_of<std::remove_reference_t<decltype(layer_at<First + 1>(c))>>;
    const auto x = c.acts[First].view();
    if (bn.freezing().statistics()) {
      frozen_batch_norm_activation_reduce<Fn, T>(bn, ws, x, c.acts[First + 2].view(), c.grads[First + 2].view(),
                                                 static_cast<const T*>(nullptr));
      if (!want_dx) return;
      c.grads[First].resize(x.rows(), x.cols());
      return kernels::scale_columns(x.rows(), x.cols(), ws.du.data(), x.cols(), ws.scale.data(), c.grads[First].data(),
                                    x.cols());
    }
    matrix_view<T> dz = ws.du.view();
    if (want_dx) {
      c.grads[First].resize(x.rows(), x.cols());
      dz = c.grads[First].view();
    } else {
      ws.du.resize(x.rows(), x.cols());
      dz = ws.du.view();
    }
    batch_norm_activation_backward<Fn, T>(bn, ws, x, c.acts[First + 2].view(), c.grads[First + 2].view(), dz);
  }
};

}  // namespace fnn::detail
