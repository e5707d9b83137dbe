// The smallest firmware around the exported model, to measure what deploy costs in flash beyond the weights
// (deploy_cortex_m4f_code_budget): start-up (startup.hpp) and one predict() on an input in .bss. Runs too (exit
// status 0 unless the logits are NaN), so the measured image is known to work.
#include "device_model.hpp"
#include "startup.hpp"

namespace {
float input[device_model::model_type::input_size];
}

int main() {
  float out[device_model::model_type::output_size];
  device_model::model.predict(input, out);
  return out[0] == out[0] ? 0 : 1;
}
