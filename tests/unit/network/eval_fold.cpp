// Eval mode folds batch norm into the dense product (network/stages.hpp). Whatever the fold keeps, it must never
// be stale: after each way the parameters or running statistics can change (an optimizer step inside train_step,
// a train-mode forward, a checkpoint load, for_each_parameter / for_each_buffer, the layers' mutable accessors,
// spans kept from earlier and written later, an optimizer stepping plain spans, reset), infer() must equal the
// unfused reference network holding the same values. Every case first runs infer() (so that a cached fold, if
// the implementation kept one, would exist), then mutates, then checks that the output changed and that it
// matches the reference, at batch 1, 3 and 16 (the matrix-vector path) and 17 and 37 (the GEMM path).
//
// The fused output is computed before the reference copies the parameters (a copy goes through for_each_parameter,
// which could refresh a cache and hide a stale one).
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/optim/adam.hpp"
#include "helpers.hpp"

namespace {

using namespace fnn;
using fnn_test::random_labels;
using fnn_test::random_matrix;

// Every fused eval stage: dense + batch norm + act (with and without a dense bias), dense + act, dense alone.
template <class P>
using net_of = network<P, float, input<19>, dense<33>, batch_norm, gelu, dense<17>::without_bias, batch_norm, relu,
                       dense<9>, fnn::tanh, dense<5>>;
using fused_t = net_of<fused>;
using unfused_t = net_of<unfused>;
static_assert(fused_t::plan::size == 4);

const index_t batches[] = {1, 3, 16, 17, 37};  // kernels::gemv up to 16 (kernels::gemv_max_rows), the GEMM beyond

std::vector<matrix<float>> inputs() {
  std::vector<matrix<float>> xs;
  for (index_t b : batches) xs.push_back(random_matrix<float>(b, 19, 100 + std::uint32_t(b), 1.5));
  return xs;
}

std::vector<std::vector<float>> infer_all(fused_t& net, const std::vector<matrix<float>>& xs) {
  std::vector<std::vector<float>> out;
  for (const auto& x : xs) {
    const auto y = net.infer(x.view());
    out.emplace_back(y.flat().begin(), y.flat().end());
  }
  return out;
}

// The unfused network with the same parameters and buffers as `net`, evaluated on xs.
std::vector<std::vector<float>> reference_all(fused_t& net, const std::vector<matrix<float>>& xs) {
  std::vector<std::vector<float>> values;
  net.for_each_parameter([&](parameter_ref<float>& p) { values.emplace_back(p.value.begin(), p.value.end()); });
  net.for_each_buffer([&](buffer_ref<float>& b) { values.emplace_back(b.value.begin(), b.value.end()); });
  unfused_t ref{seed{999}};
  std::size_t i = 0;
  ref.for_each_parameter(
      [&](parameter_ref<float>& p) { std::copy(values[i].begin(), values[i].end(), p.value.begin()), ++i; });
  ref.for_each_buffer(
      [&](buffer_ref<float>& b) { std::copy(values[i].begin(), values[i].end(), b.value.begin()), ++i; });
  std::vector<std::vector<float>> out;
  for (const auto& x : xs) {
    const auto y = ref.infer(x.view());
    out.emplace_back(y.flat().begin(), y.flat().end());
  }
  return out;
}

double max_scaled_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, scale = 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, std::abs(double(a[i]) - double(b[i])));
    if (!std::isfinite(a[i])) d = 1e300;
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return d / scale;
}

// prepare(net), infer() (any cache now exists), mutate(net), then infer() must have changed and must match the
// reference.
template <class Prepare, class Mutate>
void check_after(const char* path, Prepare&& prepare, Mutate&& mutate) {
  BOOST_TEST_CONTEXT(path) {
    fused_t net{seed{5}};
    // Running statistics away from (0, 1) first, so that every term of the fold matters.
    for (int s = 0; s < 2; ++s)
      net.forward(random_matrix<float>(16, 19, 40 + std::uint32_t(s), 2.0).view(), mode::train);
    prepare(net);
    const auto xs = inputs();
    const auto before = infer_all(net, xs);
    mutate(net);
    const auto after = infer_all(net, xs);
    const auto expected = reference_all(net, xs);
    for (std::size_t b = 0; b < xs.size(); ++b) {
      BOOST_TEST_INFO("batch " << batches[b]);
      BOOST_TEST(max_scaled_difference(after[b], before[b]) > 1e-3);  // the mutation reaches the output
      BOOST_TEST_INFO("batch " << batches[b]);
      BOOST_TEST(max_scaled_difference(after[b], expected[b]) < 2e-5);
    }
  }
}
template <class Mutate>
void check_after(const char* path, Mutate&& mutate) {
  check_after(
      path, [](fused_t&) {}, mutate);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eval_fold_is_never_stale)

BOOST_AUTO_TEST_CASE(after_train_step) {
  check_after("train_step with AdamW", [](fused_t& net) {
    optim::adamw opt{{.lr = 5e-2f, .weight_decay = 1e-2f}};
    for (int s = 0; s < 2; ++s)
      net.train_step(random_matrix<float>(8, 19, 60 + std::uint32_t(s)).view(), random_labels(8, 5, 61),
                     loss::softmax_cross_entropy{}, opt);
  });
}

BOOST_AUTO_TEST_CASE(after_compute_gradients_and_an_optimizer_step_on_the_network) {
  check_after("opt.step(net)", [](fused_t& net) {
    optim::adamw opt{{.lr = 5e-2f}};
    net.compute_gradients(random_matrix<float>(8, 19, 62).view(), random_labels(8, 5, 63),
                          loss::softmax_cross_entropy{}, mode::eval);  // eval: parameters only, no statistics
    opt.step(net);
  });
}

BOOST_AUTO_TEST_CASE(after_a_train_mode_forward) {
  // Only the running statistics change (mode switch eval -> train -> eval).
  check_after("forward(train)",
              [](fused_t& net) { net.forward(random_matrix<float>(12, 19, 64, 3.0).view(), mode::train); });
}

BOOST_AUTO_TEST_CASE(after_load_model) {
  const auto path =
      std::filesystem::temp_directory_path() / ("fnn_eval_fold_" + std::to_string(::getpid()) + ".safetensors");
  {
    fused_t other{seed{77}};
    other.forward(random_matrix<float>(16, 19, 65, 2.5).view(), mode::train);
    io::save_model(path, other);
  }
  check_after("load_model", [&](fused_t& net) { io::load_model(path, net); });
  std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(after_for_each_parameter) {
  check_after("for_each_parameter", [](fused_t& net) {
    net.for_each_parameter([](parameter_ref<float>& p) {
      for (float& v : p.value) v = v * 0.75f + 0.05f;
    });
  });
}

BOOST_AUTO_TEST_CASE(after_for_each_buffer) {
  check_after("for_each_buffer (running statistics)", [](fused_t& net) {
    net.for_each_buffer([](buffer_ref<float>& b) {
      for (float& v : b.value) v = b.suffix == "running_var" ? v * 2.5f : v + 0.4f;
    });
  });
}

BOOST_AUTO_TEST_CASE(after_each_mutable_accessor) {
  check_after("layer<0>().weight()", [](fused_t& net) { net.layer<0>().weight()[3] += 1.5f; });
  check_after("layer<0>().bias()", [](fused_t& net) {
    for (float& b : net.layer<0>().bias()) b += 0.5f;
  });
  check_after("layer<1>().gamma()", [](fused_t& net) {
    for (float& g : net.layer<1>().gamma()) g *= 1.7f;
  });
  check_after("layer<1>().beta()", [](fused_t& net) {
    for (float& b : net.layer<1>().beta()) b += 0.3f;
  });
  check_after("layer<3>().weight() (bias-free dense before batch norm)", [](fused_t& net) {
    for (float& w : net.layer<3>().weight()) w *= -1.f;
  });
  check_after("std::get<4>(layers()).gamma()", [](fused_t& net) {
    for (float& g : std::get<4>(net.layers()).gamma()) g += 0.6f;
  });
}

BOOST_AUTO_TEST_CASE(after_writes_through_spans_kept_from_before) {
  // Spans taken before the first infer and written after it, with no call on the network in between: what a
  // cache invalidated by the accessors could not see.
  std::span<float> w, gamma;
  const std::vector<float> grads(33 * 19, 1.f);
  check_after(
      "kept spans, and an optimizer stepping them",
      [&](fused_t& net) {
        w = net.layer<0>().weight();
        net.for_each_parameter([&](parameter_ref<float>& p) {
          if (p.name() == "1.weight") gamma = p.value;
        });
        BOOST_REQUIRE(gamma.size() == 33u);
      },
      [&](fused_t&) {
        for (float& g : gamma) g *= 0.5f;
        optim::adamw opt{{.lr = 1e-1f}};
        opt.step(w, std::span<const float>(grads));
      });
}

BOOST_AUTO_TEST_CASE(after_reset) {
  check_after("reset", [](fused_t& net) { net.reset(seed{123}); });
}

BOOST_AUTO_TEST_SUITE_END()
