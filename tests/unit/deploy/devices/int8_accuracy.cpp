// The int8 model against the float model it was quantized from, on Fashion-MNIST test images (x86, host):
// test accuracy of each, overall and per class, and the drop. Both are fnn-export headers of one checkpoint, the
// float one in namespace float_model (float_model.hpp), the int8 one in int8_model (int8_model.hpp). The inputs
// are preprocessed as the model was trained (pixel / 255, then fnn.standardize.* if the checkpoint has it); the
// int8 model quantizes them with its own quantize_input.
//   int8_accuracy <model.safetensors> <fashion-mnist dir> <count, 0 = all> <max drop in percentage points>
// Exit status 1 when the int8 accuracy is more than the bound below the float one.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "float_model.hpp"
#include "fnn/io/mnist.hpp"
#include "int8_exporter.hpp"
#include "int8_model.hpp"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <model.safetensors> <fashion-mnist dir> <count> <max drop pp>\n", argv[0]);
    return 2;
  }
  try {
    using f_t = float_model::model_type;
    using q_t = int8_model::model_type;
    static_assert(f_t::in_features == q_t::in_features && f_t::out_features == q_t::out_features);
    constexpr std::size_t in = f_t::in_features, classes = f_t::out_features;
    const auto file = fnn::io::read_safetensors(argv[1]);
    const auto test = fnn::io::load_mnist_bytes(argv[2], fnn::io::split::test);
    const long want = std::stol(argv[3]);
    const double bound = std::stod(argv[4]);
    const std::size_t n = want > 0 && want < long(test.size()) ? std::size_t(want) : std::size_t(test.size());
    const bool standardize = file.metadata.count("fnn.standardize.mean") && file.metadata.count("fnn.standardize.std");
    const auto mean = standardize ? fnn_export::numbers(file, "fnn.standardize.mean", in) : std::vector<float>();
    const auto sd = standardize ? fnn_export::numbers(file, "fnn.standardize.std", in) : std::vector<float>();
    std::vector<long> seen(classes), right_f(classes), right_q(classes);
    long agree = 0;
    std::vector<float> x(in);
    float yf[classes], yq[classes];
    std::int8_t xq[in], oq[classes];
    for (std::size_t i = 0; i < n; ++i) {
      fnn::io::pixels_to_float(test.pixels().row(fnn::index_t(i)), in, x.data());
      if (standardize)
        for (std::size_t j = 0; j < in; ++j) x[j] = (x[j] - mean[j]) / sd[j];
      float_model::model.predict(x.data(), yf);
      int8_model::model.quantize_input(x.data(), xq);
      int8_model::model.predict(xq, oq);
      int8_model::model.dequantize_output(oq, yq);
      std::size_t bf = 0, bq = 0;
      for (std::size_t c = 1; c < classes; ++c) {
        bf = yf[c] > yf[bf] ? c : bf;
        bq = oq[c] > oq[bq] ? c : bq;  // the int8 argmax, on integers
      }
      const auto label = std::size_t(test.labels[i]);
      ++seen[label];
      right_f[label] += bf == label;
      right_q[label] += bq == label;
      agree += bf == bq;
    }
    long total_f = 0, total_q = 0;
    std::printf("int8_accuracy: %zu test images of %s\n| class | images | float %% | int8 %% |\n|---:|---:|---:|---:|\n", n,
                argv[2]);
    for (std::size_t c = 0; c < classes; ++c) {
      total_f += right_f[c], total_q += right_q[c];
      std::printf("| %zu | %ld | %.2f | %.2f |\n", c, seen[c], 100.0 * double(right_f[c]) / double(seen[c]),
                  100.0 * double(right_q[c]) / double(seen[c]));
    }
    const double af = 100.0 * double(total_f) / double(n), aq = 100.0 * double(total_q) / double(n);
    const bool ok = af - aq <= bound;
    std::printf("| all | %zu | %.2f | %.2f |\nint8_accuracy %s: float %.2f %%, int8 %.2f %%, drop %.2f pp (bound %.2f), "
                "same class on %.2f %% of the images\n",
                n, af, aq, ok ? "pass" : "FAIL", af, aq, af - aq, bound, 100.0 * double(agree) / double(n));
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "int8_accuracy: %s\n", e.what());
    return 2;
  }
}
