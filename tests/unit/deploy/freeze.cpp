// freeze(net) against net.infer(): every activation, every layer kind, odd widths, batch 1 and N.
#include "fnn/deploy/freeze.hpp"

#include <boost/mpl/list.hpp>
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <memory>
#include <ostream>
#include <tuple>
#include <type_traits>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/optim/adam.hpp"
#include "helpers.hpp"

namespace d = fnn::deploy;
using fnn_deploy_test::check_close;
using fnn_deploy_test::random_input;
using fnn_deploy_test::randomize;

// The main job's network lowers to three dense layers, batch norm and GELU inside the first two.
using main_net = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<256>,
                                 fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
using main_model = d::model_of<main_net>;
static_assert(std::is_same_v<main_model, d::model<d::static_batch<1>, d::dense<784, 256, d::act::gelu>,
                                                  d::dense<256, 256, d::act::gelu>, d::dense<256, 10>>>);
static_assert(main_model::weight_bytes == (784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10) * 4);
static_assert(main_model::scratch_bytes == (256 + 256) * 4);  // ping-pong of the two hidden activations
static_assert(d::model_of<main_net, d::static_batch<4>>::scratch_bytes == 4 * (256 + 256) * 4);
static_assert(main_model::input_size == 784 && main_model::output_size == 10);

template <class Model, class Net>
std::vector<float> deploy_run(const Model& m, const std::vector<typename Net::value_type>& x) {
  std::vector<float> in(x.begin(), x.end()), out(Model::output_size, -1.0f);
  m.predict(in.data(), out.data());
  return out;
}

template <std::size_t Batch, class Net>
void check_against_infer(Net& net, std::uint32_t seed, double tol = 2e-5) {
  using T = typename Net::value_type;
  randomize(net, seed);
  const auto m = d::freeze<d::static_batch<Batch>>(net);
  using model_t = std::remove_reference_t<decltype(*m)>;
  const auto x = random_input<T>(Batch * Net::in_features, seed + 1);
  const auto want = net.infer(fnn::const_matrix_view<T>(x.data(), fnn::index_t(Batch), fnn::index_t(Net::in_features)));
  check_close(deploy_run<model_t, Net>(*m, x), want, tol);
}

template <class Act>
using act_net = fnn::sequential<fnn::input<13>, fnn::dense<17>, fnn::batch_norm, Act, fnn::dense<9>, Act,
                                fnn::dropout<0.25>, fnn::dense<5>>;

using activations = boost::mpl::list<fnn::relu, fnn::leaky_relu<0.07>, fnn::elu<0.6>, fnn::selu, fnn::sigmoid,
                                     fnn::tanh, fnn::gelu, fnn::gelu_tanh, fnn::swish>;

namespace fnn::deploy {
std::ostream& operator<<(std::ostream& o, status s) { return o << "status " << int(s); }
}  // namespace fnn::deploy

BOOST_AUTO_TEST_SUITE(freeze)

BOOST_AUTO_TEST_CASE_TEMPLATE(every_activation_fused_into_dense_batch_1_and_3, Act, activations) {
  using net_t = act_net<Act>;
  // dense+bn+act, dense+act (dropout dropped), dense: three deploy layers.
  static_assert(d::model_of<net_t>::layer_count == 3);
  net_t net{fnn::seed{7}};
  check_against_infer<1>(net, 11);
  check_against_infer<3>(net, 12);
}

// Every other layer kind, each where it does not fuse: dense without bias + batch norm, prelu, dense alone,
// layer_norm, a lone activation, maxout, a lone batch norm.
using mixed_net = fnn::sequential<fnn::input<11>, fnn::dense<12>::without_bias, fnn::batch_norm, fnn::prelu,
                                  fnn::dense<9>, fnn::layer_norm, fnn::gelu, fnn::dense<15>, fnn::maxout<3>,
                                  fnn::batch_norm, fnn::tanh, fnn::dense<4>>;
static_assert(
    std::is_same_v<d::model_of<mixed_net>,
                   d::model<d::static_batch<1>, d::dense<11, 12>, d::prelu<12>, d::dense<12, 9>, d::layer_norm<9>,
                            d::activation<9, d::act::gelu>, d::dense<9, 15>, d::maxout<15, 3>, d::scale_shift<5>,
                            d::activation<5, d::act::tanh>, d::dense<5, 4>>>);

BOOST_AUTO_TEST_CASE(every_layer_kind_batch_1_and_5) {
  mixed_net net{fnn::seed{3}};
  check_against_infer<1>(net, 21);
  check_against_infer<5>(net, 22);
}

// group_norm<3> over 12 features: its own deploy layer (dense before it alone, the GELU after it a lone activation).
using group_norm_net = fnn::sequential<fnn::input<20>, fnn::dense<12>, fnn::group_norm<3>, fnn::gelu, fnn::dense<4>>;
using group_norm_model = d::model_of<group_norm_net, d::static_batch<4>>;
static_assert(std::is_same_v<group_norm_model, d::model<d::static_batch<4>, d::dense<20, 12>, d::group_norm<12, 3>,
                                                        d::activation<12, d::act::gelu>, d::dense<12, 4>>>);
static_assert(group_norm_model::parameter_count == 20 * 12 + 12 + 2 * 12 + 12 * 4 + 4);

// A few AdamW steps move gamma and beta away from 1 and 0 (so a fill that skipped or swapped them shows), then the
// frozen model against net.infer(); and the same parameters normalized over one group instead of three are far off
// (so the comparison can fail when the groups are wrong).
BOOST_AUTO_TEST_CASE(trained_group_norm_batch_1_and_4) {
  group_norm_net net{fnn::seed{17}};
  const auto x = random_input<float>(32 * 20, 71);
  std::vector<std::int32_t> labels(32);
  for (std::size_t i = 0; i < 32; ++i) labels[i] = std::int32_t((x[i * 20] > 0) + 2 * (x[i * 20 + 1] > 0));
  fnn::optim::adamw opt{{.lr = 5e-2f}};
  for (int step = 0; step < 10; ++step)
    net.train_step(fnn::const_matrix_view<float>(x.data(), 32, 20), labels, fnn::loss::softmax_cross_entropy{}, opt);
  const auto& gn = net.layer<1>();
  double moved_gamma = 0, moved_beta = 0;
  for (std::size_t j = 0; j < 12; ++j) {
    moved_gamma = std::max(moved_gamma, double(std::abs(gn.gamma()[j] - 1.0f)));
    moved_beta = std::max(moved_beta, double(std::abs(gn.beta()[j])));
  }
  BOOST_TEST(moved_gamma > 0.05);
  BOOST_TEST(moved_beta > 0.05);

  const auto one = d::freeze(net);
  const auto four = d::freeze<d::static_batch<4>>(net);
  const auto& p = d::params_of<1>(*four);
  for (std::size_t j = 0; j < 12; ++j) {
    BOOST_TEST(p.gamma[j] == gn.gamma()[j]);
    BOOST_TEST(p.beta[j] == gn.beta()[j]);
  }
  double worst = 0;
  for (std::uint32_t k = 0; k < 4; ++k) {
    const auto in = random_input<float>(4 * 20, 80 + k);
    const auto want = net.infer(fnn::const_matrix_view<float>(in.data(), 4, 20));
    std::vector<float> got(4 * 4);
    four->predict(in.data(), got.data());
    check_close(got, want, 1e-5);
    for (std::size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, double(std::abs(got[i] - want.view()(fnn::index_t(i / 4), fnn::index_t(i % 4)))));
    std::vector<float> row(4);
    one->predict(in.data(), row.data());
    for (std::size_t c = 0; c < 4; ++c) BOOST_TEST(row[c] == got[c]);  // batch 1 = row 0 of batch 4, bit for bit
  }
  BOOST_TEST_MESSAGE("freeze(group_norm net) vs net.infer(): worst |difference| " << worst);

  using one_group_model = d::model<d::static_batch<4>, d::dense<20, 12>, d::group_norm<12, 1>,
                                   d::activation<12, d::act::gelu>, d::dense<12, 4>>;
  auto other = std::make_unique<one_group_model>();
  d::params_of<0>(*other) = d::params_of<0>(*four);
  std::copy(std::begin(p.gamma), std::end(p.gamma), d::params_of<1>(*other).gamma);
  std::copy(std::begin(p.beta), std::end(p.beta), d::params_of<1>(*other).beta);
  d::params_of<3>(*other) = d::params_of<3>(*four);
  const auto in = random_input<float>(4 * 20, 90);
  std::vector<float> a(16), b(16);
  four->predict(in.data(), a.data());
  other->predict(in.data(), b.data());
  double apart = 0;
  for (std::size_t i = 0; i < 16; ++i) apart = std::max(apart, double(std::abs(a[i] - b[i])));
  BOOST_TEST(apart > 1e-2);
  BOOST_TEST_MESSAGE("group_norm freeze: gamma moved " << moved_gamma << ", beta " << moved_beta
                                                       << "; one group instead of three: " << apart);
}

// group_norm<F> (instance norm): each feature alone normalizes to 0, so the layer outputs beta whatever the input.
BOOST_AUTO_TEST_CASE(instance_norm_outputs_beta) {
  using net_t = fnn::sequential<fnn::input<6>, fnn::dense<8>, fnn::group_norm<8>, fnn::dense<3>>;
  static_assert(std::is_same_v<d::model_of<net_t>,
                               d::model<d::static_batch<1>, d::dense<6, 8>, d::group_norm<8, 8>, d::dense<8, 3>>>);
  net_t net{fnn::seed{5}};
  check_against_infer<1>(net, 91);
  check_against_infer<3>(net, 92);
  const auto m = d::freeze(net);
  const auto& p = d::params_of<1>(*m);
  const auto x = random_input<float>(2 * 8, 93);
  std::vector<float> y(2 * 8);
  d::group_norm<8, 8>::run(p, x.data(), y.data(), 2);
  for (std::size_t i = 0; i < y.size(); ++i) BOOST_TEST(y[i] == p.beta[i % 8]);
}

BOOST_AUTO_TEST_CASE(double_network_to_float_tolerance) {
  fnn::basic_sequential<double, fnn::input<29>, fnn::dense<31>, fnn::batch_norm, fnn::swish, fnn::dense<3>> net{
      fnn::seed{5}};
  check_against_infer<1>(net, 31);
  check_against_infer<2>(net, 32);
}

BOOST_AUTO_TEST_CASE(main_job_network) {
  main_net net{fnn::seed{42}};
  check_against_infer<1>(net, 41);
  check_against_infer<4>(net, 42);
}

// A fold that ignored the running statistics or gamma would pass with fresh batch norms; with random ones
// the identity fold must be far off (so the comparisons above can fail).
BOOST_AUTO_TEST_CASE(an_unfolded_batch_norm_is_detected) {
  act_net<fnn::relu> net{fnn::seed{7}};
  randomize(net, 11);
  auto m = d::freeze(net);
  auto& p = d::params_of<0>(*m);
  auto& dense0 = net.layer<0>();
  for (std::size_t i = 0; i < 13 * 17; ++i) p.weight[i] = dense0.weight()[i];
  for (std::size_t i = 0; i < 17; ++i) p.bias[i] = dense0.bias()[i];
  const auto x = random_input<float>(13, 12);
  const auto want = net.infer(fnn::const_matrix_view<float>(x.data(), 1, 13));
  const auto got = deploy_run<d::model_of<act_net<fnn::relu>>, act_net<fnn::relu>>(*m, x);
  double worst = 0;
  for (std::size_t j = 0; j < 5; ++j) worst = std::max(worst, double(std::abs(got[j] - want(0, fnn::index_t(j)))));
  BOOST_TEST(worst > 1e-2);
}

BOOST_AUTO_TEST_CASE(partial_batches_and_misuse_report_a_status) {
  act_net<fnn::gelu> net{fnn::seed{9}};
  randomize(net, 51);
  const auto m = d::freeze<d::static_batch<4>>(net);
  const auto x = random_input<float>(4 * 13, 52);
  std::vector<float> full(4 * 5), part(4 * 5, 123.0f);
  m->predict(x.data(), full.data());
  BOOST_TEST(m->predict_rows(x.data(), 2, part.data()) == d::status::ok);
  for (std::size_t i = 0; i < 2 * 5; ++i) BOOST_TEST(part[i] == full[i]);
  for (std::size_t i = 2 * 5; i < 4 * 5; ++i) BOOST_TEST(part[i] == 123.0f);  // rows past `rows` untouched
  BOOST_TEST(m->predict_rows(x.data(), 0, part.data()) == d::status::empty_batch);
  BOOST_TEST(m->predict_rows(x.data(), 5, part.data()) == d::status::batch_too_large);
  BOOST_TEST(m->predict_rows(nullptr, 1, part.data()) == d::status::null_pointer);
}

// The caller's scratch buffer gives the same bits as the stack one.
BOOST_AUTO_TEST_CASE(caller_scratch_buffer) {
  act_net<fnn::tanh> net{fnn::seed{10}};
  randomize(net, 61);
  const auto m = d::freeze<d::static_batch<2>>(net);
  using model_t = d::model_of<act_net<fnn::tanh>, d::static_batch<2>>;
  static_assert(model_t::scratch_floats == 2 * (17 + 9));
  const auto x = random_input<float>(2 * 13, 62);
  std::vector<float> a(10), b(10), scratch(model_t::scratch_floats);
  m->predict(x.data(), a.data());
  m->predict(x.data(), b.data(), scratch.data());
  BOOST_TEST(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
