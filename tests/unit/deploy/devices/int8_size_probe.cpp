// size_probe.cpp for the int8 model: start-up and one integer predict() on an input in .bss (no quantize_input:
// a sensor gives integers), to measure what int8 deploy costs in flash beyond its weights
// (deploy_int8_cortex_m4f_code_budget). Runs too (exit status 0); the outputs go to a volatile so that predict()
// is kept.
#include <cstdint>

#include "device_model.hpp"
#include "startup.hpp"

namespace {
std::int8_t input[device_model::model_type::input_size];
volatile std::int8_t sink;
}

int main() {
  std::int8_t out[device_model::model_type::output_size];
  device_model::model.predict(input, out);
  for (std::int8_t v : out) sink = v;
  return 0;
}
