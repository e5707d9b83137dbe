// static_assert-only checks: shape inference, default initializers, layer binding. Compiling is the test.
#include <type_traits>

#include "fnn/fnn.hpp"

namespace {

using mlp = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                            fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
static_assert(mlp::in_features == 784 && mlp::out_features == 10 && mlp::layer_count == 7);
static_assert(mlp::layer_type<0>::in_features == 784 && mlp::layer_type<0>::out_features == 256);
static_assert(mlp::layer_type<3>::in_features == 256 && mlp::layer_type<3>::out_features == 256);
static_assert(mlp::layer_type<6>::in_features == 256 && mlp::layer_type<6>::out_features == 10);
static_assert(std::is_same_v<mlp::value_type, float>);

// The initializer follows the activation after the dense layer, skipping normalization.
static_assert(std::is_same_v<mlp::layer_type<0>::init_type, fnn::init::he_normal>);
static_assert(mlp::layer_type<0>::init_gain > 1.414 && mlp::layer_type<0>::init_gain < 1.415);
static_assert(std::is_same_v<mlp::layer_type<6>::init_type, fnn::init::torch_linear_default>);

using tanh_net = fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::tanh, fnn::dense<2>, fnn::selu, fnn::dense<3>,
                                 fnn::dropout<0.5>, fnn::leaky_relu<0.2>, fnn::dense<1>>;
static_assert(std::is_same_v<tanh_net::layer_type<0>::init_type, fnn::init::xavier_normal>);
static_assert(std::is_same_v<tanh_net::layer_type<2>::init_type, fnn::init::lecun_normal>);
// Dropout is skipped too; leaky ReLU's gain is sqrt(2 / (1 + 0.2^2)).
static_assert(std::is_same_v<tanh_net::layer_type<4>::init_type, fnn::init::he_normal>);
static_assert(tanh_net::layer_type<4>::init_gain > 1.3867 && tanh_net::layer_type<4>::init_gain < 1.3868);

// Explicit sizes, overrides, maxout narrowing, no-bias.
using explicit_net = fnn::sequential<fnn::input<6>, fnn::dense<6, 12>::init<fnn::init::xavier_uniform>,
                                     fnn::maxout<3>, fnn::dense<5>::without_bias, fnn::layer_norm, fnn::prelu>;
static_assert(std::is_same_v<explicit_net::layer_type<0>::init_type, fnn::init::xavier_uniform>);
static_assert(explicit_net::layer_type<1>::out_features == 4);
static_assert(!explicit_net::layer_type<2>::has_bias && explicit_net::layer_type<0>::has_bias);
static_assert(explicit_net::out_features == 5);

// Double-precision networks for gradient checks share the same specs.
static_assert(std::is_same_v<fnn::basic_sequential<double, fnn::input<3>, fnn::dense<2>>::value_type, double>);

static_assert(fnn::layer_spec<fnn::gelu> && fnn::layer_spec<fnn::dense<3>> && !fnn::layer_spec<int>);

// The fusion plan: dense+batch_norm+activation, dense+activation, dense alone, batch_norm+activation;
// anything else (dropout, PReLU, maxout, layer_norm) is a stage of its own.
namespace pl = fnn::plan;
using pk = pl::stage_kind;
static_assert(std::is_same_v<mlp::plan, pl::stages<pl::stage<pk::dense_bn_act, 0, 3>, pl::stage<pk::dense_bn_act, 3, 3>,
                                                   pl::stage<pk::dense_only, 6, 1>>>);
using mixed = fnn::sequential<fnn::input<8>, fnn::dense<8>, fnn::relu, fnn::batch_norm, fnn::tanh, fnn::dropout<0.1>,
                              fnn::dense<8>, fnn::prelu, fnn::dense<9>, fnn::maxout<3>, fnn::layer_norm, fnn::dense<4>,
                              fnn::batch_norm, fnn::dense<2>, fnn::swish>;
static_assert(std::is_same_v<mixed::plan,
                             pl::stages<pl::stage<pk::dense_act, 0, 2>, pl::stage<pk::bn_act, 2, 2>,
                                        pl::stage<pk::single, 4, 1>, pl::stage<pk::dense_only, 5, 1>,
                                        pl::stage<pk::single, 6, 1>, pl::stage<pk::dense_only, 7, 1>,
                                        pl::stage<pk::single, 8, 1>, pl::stage<pk::single, 9, 1>,
                                        pl::stage<pk::dense_only, 10, 1>, pl::stage<pk::single, 11, 1>,
                                        pl::stage<pk::dense_act, 12, 2>>>);
// The unfused policy: one single stage per layer.
using mlp_unfused = fnn::unfused_sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu,
                                            fnn::dense<10>>;
static_assert(std::is_same_v<mlp_unfused::plan, pl::stages<pl::stage<pk::single, 0, 1>, pl::stage<pk::single, 1, 1>,
                                                           pl::stage<pk::single, 2, 1>, pl::stage<pk::single, 3, 1>>>);

}  // namespace

int main() { return 0; }
