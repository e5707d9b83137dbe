// fnn-eval's reference interpreter (runtime_net.hpp) against the typed networks it stands in for, and the
// layer-list text it reads (network/describe.hpp).
#include <boost/test/unit_test.hpp>
#include <random>

#include "fnn/network/describe.hpp"
#include "helpers.hpp"
#include "runtime_net.hpp"

namespace {

using fnn_train::test::scratch_dir;

template <class Net>
void check_interpreter_matches(const std::string& tag, int train_steps) {
  scratch_dir dir("interp_" + tag);
  Net net{fnn::seed{7}};
  std::mt19937 gen(3);
  std::normal_distribution<float> g(0.0f, 1.0f);
  fnn::matrix<float> x(37, 784);
  for (float& v : x.flat()) v = g(gen);
  std::vector<std::int32_t> y(37);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = std::int32_t(i % 10);
  fnn::optim::adam opt{{.lr = 1e-2f}};
  for (int s = 0; s < train_steps; ++s) net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  fnn::io::save_model(dir.path / "m.safetensors", net, {{"fnn.layers", fnn::layers_text<Net>()}});
  const auto file = fnn::io::read_safetensors(dir.path / "m.safetensors");
  const fnn_train::runtime_net r(file, file.metadata.at("fnn.layers"));
  const auto got = r.infer(x.data(), std::size_t(x.rows()));
  const auto want = net.infer(x.view());
  double worst = 0;
  for (fnn::index_t i = 0; i < want.rows(); ++i)
    for (fnn::index_t j = 0; j < want.cols(); ++j)
      worst = std::max(worst, std::abs(double(got[std::size_t(i * want.cols() + j)]) - double(want(i, j))));
  BOOST_TEST_MESSAGE(tag << ": " << fnn::layers_text<Net>() << "; max |interpreter - typed| = " << worst);
  BOOST_TEST(worst < 1e-3, tag << ": " << worst);
}

std::string construction_error(const fnn::io::safetensors_file& f, const std::string& layers) {
  try {
    fnn_train::runtime_net r(f, layers);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(eval)

BOOST_AUTO_TEST_CASE(layers_text_names_every_layer_and_its_options) {
  using n = fnn::sequential<fnn::input<784>, fnn::dense<64>::without_bias, fnn::leaky_relu<0.1>, fnn::dropout<0.25>,
                            fnn::dense<30>, fnn::maxout<3>, fnn::elu<0.5>, fnn::layer_norm, fnn::dense<10>>;
  BOOST_TEST(fnn::layers_text<n>() ==
             "dense 784 64 bias=0; leaky_relu 64 64 slope=0.1; dropout 64 64 p=0.25; dense 64 30; maxout 30 10 "
             "pieces=3; elu 10 10 alpha=0.5; layer_norm 10 10; dense 10 10");
}

BOOST_AUTO_TEST_CASE(the_interpreter_runs_networks_fnn_eval_has_no_type_for) {
  check_interpreter_matches<fnn_train::net_t>("main_job", 3);
  check_interpreter_matches<fnn::sequential<fnn::input<784>, fnn::dense<48>::without_bias, fnn::layer_norm,
                                            fnn::leaky_relu<0.2>, fnn::dropout<0.5>, fnn::dense<30>, fnn::maxout<3>,
                                            fnn::selu, fnn::dense<10>>>("ln_leaky_maxout_selu", 3);
  check_interpreter_matches<fnn::sequential<fnn::input<784>, fnn::dense<32>, fnn::batch_norm, fnn::elu<0.7>,
                                            fnn::dense<32>, fnn::prelu, fnn::dense<32>, fnn::tanh, fnn::dense<32>,
                                            fnn::sigmoid, fnn::dense<32>, fnn::swish, fnn::dense<32>,
                                            fnn::gelu_tanh, fnn::dense<16>, fnn::relu, fnn::dense<10>>>(
      "every_activation", 3);
  // group_norm: 3 groups of 16 and the instance-norm case (every feature its own group is degenerate: use 2 of 8).
  check_interpreter_matches<fnn::sequential<fnn::input<784>, fnn::dense<48>, fnn::group_norm<3>, fnn::gelu,
                                            fnn::dense<16>, fnn::group_norm<2>, fnn::relu, fnn::dense<10>>>(
      "group_norm", 3);
}

BOOST_AUTO_TEST_CASE(a_layer_list_that_does_not_fit_the_tensors_is_refused_with_the_layer_named) {
  scratch_dir dir("interp_bad");
  fnn_train::net_t net{fnn::seed{1}};
  fnn::io::save_model(dir.path / "m.safetensors", net);
  const auto f = fnn::io::read_safetensors(dir.path / "m.safetensors");
  const std::string good = fnn::layers_text<fnn_train::net_t>();
  BOOST_TEST(construction_error(f, good).empty());
  BOOST_TEST(construction_error(f, "dense 784 128; batch_norm 128 128").find("0.weight") != std::string::npos);
  BOOST_TEST(construction_error(f, "dense 784 256; batch_norm 256 256; gelu 128 128")
                 .find("layer 2 of \"fnn.layers\" takes 128 features, the layer before it produces 256") !=
             std::string::npos);
  BOOST_TEST(construction_error(f, "dense 784 256; batch_norm 256 256; softplus 256 256").find("unknown layer") !=
             std::string::npos);
  BOOST_TEST(construction_error(f, "dense 784 256; batch_norm 256 256").find("accounts for 7") != std::string::npos);
  BOOST_TEST(construction_error(f, "dense 784").find("must read") != std::string::npos);
  BOOST_TEST(construction_error(f, "dense 784 256 bias=yes").find("malformed option") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
