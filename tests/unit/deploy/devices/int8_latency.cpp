// Batch-1 latency of the float and int8 exports of one checkpoint on this host, alternating, medians of 7 rounds.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "float_model.hpp"
#include "int8_model.hpp"

int main() {
  float x[784], y[10];
  for (int i = 0; i < 784; ++i) x[i] = float((i * 37) % 255) / 255.0f;
  std::int8_t q[784], o[10];
  int8_model::model.quantize_input(x, q);
  volatile float sink = 0;
  std::vector<double> tf, tq;
  for (int round = 0; round < 7; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 2000; ++r) float_model::model.predict(x, y), sink = sink + y[0];
    const auto t1 = std::chrono::steady_clock::now();
    for (int r = 0; r < 2000; ++r) int8_model::model.predict(q, o), sink = sink + o[0];
    const auto t2 = std::chrono::steady_clock::now();
    tf.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / 2000);
    tq.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count() / 2000);
  }
  std::sort(tf.begin(), tf.end());
  std::sort(tq.begin(), tq.end());
  std::printf("%.1f %.1f\n", tf[3], tq[3]);
}
