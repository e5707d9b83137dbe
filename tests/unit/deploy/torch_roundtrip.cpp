// A PyTorch nn.Sequential's state_dict (torch_state_dict.py), exported by fnn-export with a --layers spec, against
// torch's own eval-mode outputs: float tolerance (torch sums in another order and has its own erf / tanh).
#include <cmath>
#include <cstdio>

#include "torch_model.hpp"
#include "torch_reference.hpp"

int main() {
  using m = torch_model::model_type;
  static_assert(m::batch == 4 && m::in_features == 20 && m::out_features == 6);
  float y[m::output_size];
  torch_model::model.predict(torch_reference::inputs, y);
  int bad = 0;
  double worst = 0;
  for (unsigned i = 0; i < m::output_size; ++i) {
    const double a = y[i], b = torch_reference::outputs[i], d = std::fabs(a - b);
    worst = d > worst ? d : worst;
    if (!(d <= 2e-5 * (1 + std::fabs(b)))) {
      std::printf("output %u: fnn::deploy %.9g, torch %.9g\n", i, a, b);
      ++bad;
    }
  }
  std::printf("torch state_dict export %s: %u outputs, %d out of tolerance, worst |difference| %.3g\n",
              bad ? "FAIL" : "pass", unsigned(m::output_size), bad, worst);
  return bad ? 1 : 0;
}
