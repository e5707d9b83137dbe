// Must not compile, with Clang: the diagnostic's name, numbers included, is on the error line itself.
// Only diagnostics.hpp is included: Clang 14 cannot compile fnn's double template arguments
// (dropout<0.5>), but the one file of diagnostics must stay right for it.
#include "fnn/core/diagnostics.hpp"
template <std::size_t Index, std::size_t In, std::size_t Previous>
struct dense_like {
  static_assert(fnn::diagnostics::holds<typename fnn::diagnostics::at_layer<Index>::template dense_declares_in_features<
                    In>::template but_the_previous_layer_produces<Previous>>);
  static constexpr int value = 0;
};
#ifdef FNN_TWIN
int main() { return dense_like<1, 256, 256>::value; }
#else
int main() { return dense_like<1, 128, 256>::value; }
#endif
