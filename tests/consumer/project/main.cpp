// Trains a small network, then checks which SIMD kernels it ran: `consumer widest` expects the widest
// this CPU supports (asked at run time, in xsimd's order of preference), `consumer baseline` the
// compiler's default x86-64 / AArch64 target. Exit status 0 only if both the training and the check pass.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fnn/fnn.hpp>
#include <fnn/simd/simd.hpp>

struct sgd {
  float lr = 0.1f;
  template <class Net>
  void step(Net& net) {
    net.for_each_parameter([&](auto& p) {
      for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= lr * p.grad[i];
    });
  }
};

// The xsimd architecture a build for this CPU (-march=native) selects; nullptr where the test cannot tell.
const char* widest_arch_of_this_cpu() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bw")) return "avx512bw";
  if (__builtin_cpu_supports("avx512dq")) return "avx512dq";
  if (__builtin_cpu_supports("avx512cd")) return "avx512cd";
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return __builtin_cpu_supports("fma") ? "fma3+avx2" : "avx2";
  if (__builtin_cpu_supports("avx")) return __builtin_cpu_supports("fma") ? "fma3+avx" : "avx";
  if (__builtin_cpu_supports("sse4.2")) return "sse4.2";
  if (__builtin_cpu_supports("sse4.1")) return "sse4.1";
  if (__builtin_cpu_supports("ssse3")) return "ssse3";
  if (__builtin_cpu_supports("sse3")) return "sse3";
  return "sse2";
#elif defined(__aarch64__)
  return "arm64+neon";
#else
  return nullptr;
#endif
}

const char* baseline_arch() {
#if defined(__x86_64__)
  return "sse2";
#elif defined(__aarch64__)
  return "arm64+neon";
#else
  return nullptr;
#endif
}

int main(int argc, char** argv) {
  fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::relu, fnn::dense<2>> net{fnn::seed{1}};
  fnn::matrix<float> x(4, 4);
  for (fnn::index_t i = 0; i < x.size(); ++i) x.data()[i] = float(i % 5) - 2.0f;
  const std::vector<std::int32_t> y{0, 1, 0, 1};
  sgd opt;
  const float first = net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  float last = first;
  for (int i = 0; i < 50; ++i) last = net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  std::printf("consumer: loss %f -> %f\n", double(first), double(last));
  if (!(std::isfinite(last) && last < first)) return 1;

  const bool widest = argc > 1 && std::strcmp(argv[1], "widest") == 0;
  const char* expected = widest ? widest_arch_of_this_cpu() : baseline_arch();
  std::printf("consumer: SIMD kernels for %s, expected %s (%s)\n", fnn::simd::arch_name(),
              expected ? expected : "unknown", widest ? "the widest this CPU supports" : "the baseline target");
  if (expected != nullptr && std::strcmp(fnn::simd::arch_name(), expected) != 0) {
    std::printf("consumer: FAIL: wrong SIMD architecture\n");
    return 1;
  }
  return 0;
}
