// The deploy model headers alone, built with -fno-exceptions -fno-rtti (tests/unit/deploy/CMakeLists.txt): they
// must not pull iostream, <filesystem>, zlib or xsimd, which a microcontroller build does not have.
#include "fnn/deploy/model.hpp"

#if defined(_GLIBCXX_IOSTREAM) || defined(_GLIBCXX_FILESYSTEM) || defined(ZLIB_H) || defined(XSIMD_HPP) || \
    defined(_GLIBCXX_VECTOR) || defined(_GLIBCXX_STRING)
#error "fnn: a deploy model header includes a host-only header"
#endif

namespace d = fnn::deploy;
using model_t = d::model<d::static_batch<2>, d::dense<3, 4, d::act::relu>, d::dense<4, 2>>;

constexpr model_t model{{
    {{1, 0, 0, 0, 1, 0, 0, 0, 1, -1, -1, -1}, {0, 0, 0, 0.5f}},
    {{{1, 1, 1, 1, 1, -1, 0, 0}, {0, 1}}, {}},
}};

int main() {
  const float x[2 * 3] = {1, 2, 3, -1, -2, -3};
  float y[2 * 2] = {};
  model.predict(x, y);
  // Row 0: hidden relu(1, 2, 3, -5.5) = (1, 2, 3, 0) -> (6, 0); row 1: hidden (0, 0, 0, 6.5) -> (6.5, 1).
  const float want[4] = {6, 0, 6.5f, 1};
  for (int i = 0; i < 4; ++i)
    if (y[i] != want[i]) return 1;
  return model.predict_rows(x, 3, y) == d::status::batch_too_large ? 0 : 2;
}
