// Headers written by fnn-export at build time (tests/unit/deploy/CMakeLists.txt), compiled with -Wall -Wextra
// -Werror: the same model type as freeze() gives for the network, and bit-identical outputs to a run-time freeze
// of the same checkpoint (same kernels, same summation order; -ffp-contract=off so no FMA changes a rounding).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#define BOOST_TEST_MODULE fnn_deploy_export_roundtrip
#include <boost/test/unit_test.hpp>

#include "export_nets.hpp"
#include "fnn/deploy/freeze.hpp"
#include "fnn/io/checkpoint.hpp"
#include "helpers.hpp"
#include "main_model.hpp"
#include "mixed_model.hpp"

namespace d = fnn::deploy;
using fnn_deploy_test::main_net;
using fnn_deploy_test::mixed_net;

static_assert(std::is_same_v<main_model::model_type, d::model_of<main_net>>);
static_assert(std::is_same_v<mixed_model::model_type, d::model_of<mixed_net, d::static_batch<3>>>);

template <class Batch, class Net, class Model>
void check_identical(const Model& exported, const char* checkpoint, std::uint32_t seed) {
  Net net;
  fnn::io::load_model(std::string(FNN_DEPLOY_FIXTURE_DIR) + "/" + checkpoint, net);
  const auto frozen = d::freeze<Batch>(net);
  // Every parameter bit, then the outputs.
  BOOST_TEST(std::memcmp(&frozen->params, &exported.params, sizeof exported.params) == 0);
  double worst = 0;
  for (std::uint32_t k = 0; k < 5; ++k) {
    const auto x = fnn_deploy_test::random_input<float>(Model::input_size, seed + k);
    std::vector<float> a(Model::output_size), b(Model::output_size);
    exported.predict(x.data(), a.data());
    frozen->predict(x.data(), b.data());
    BOOST_TEST(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    // and within float tolerance of the network itself. net.infer() applies batch norm on the product's output
    // side, s * (W x), where the deploy model folds it into the weights, (s * W) x: the two round differently
    // (2.5e-5 relative measured on the main job's trained weights), hence 5e-5 rather than the default 2e-5.
    const auto want =
        net.infer(fnn::const_matrix_view<float>(x.data(), fnn::index_t(Model::batch), fnn::index_t(Net::in_features)));
    fnn_deploy_test::check_close(a, want, 5e-5);
    for (std::size_t i = 0; i < a.size(); ++i)
      worst = std::max(worst, double(std::abs(a[i] - want.view()(fnn::index_t(i / Net::out_features),
                                                                 fnn::index_t(i % Net::out_features)))));
  }
  BOOST_TEST_MESSAGE(checkpoint << ": exported header vs net.infer(), worst |difference| " << worst);
}

BOOST_AUTO_TEST_CASE(main_job_header_matches_run_time_freeze_bit_for_bit) {
  check_identical<d::static_batch<1>, main_net>(main_model::model, "main.safetensors", 100);
}

BOOST_AUTO_TEST_CASE(every_layer_kind_header_matches_run_time_freeze_bit_for_bit) {
  check_identical<d::static_batch<3>, mixed_net>(mixed_model::model, "mixed.safetensors", 200);
}
