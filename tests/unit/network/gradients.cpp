// Every layer, activation, loss and penalty: backprop agrees with central differences in double
// precision (relative error < 1e-6), for parameters and inputs, in train and eval mode.
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include "fnn/fnn.hpp"
#include "helpers.hpp"

namespace {

using fnn_test::random_labels;
using fnn_test::random_matrix;

template <class Net, class Target, class Loss, class... P>
void expect_gradients_match(Net& net, const fnn::matrix<double>& x, const Target& t, const Loss& loss, fnn::mode m,
                            const P&... penalties) {
  const auto r = fnn::check_gradients(net, x.view(), t, loss, m, {}, penalties...);
  BOOST_TEST_INFO("worst " << r.worst << ": analytic " << r.worst_analytic << ", numeric " << r.worst_numeric);
  BOOST_TEST(r.max_relative_error < 1e-6);
  BOOST_TEST(r.passed);
  BOOST_TEST(r.checked > 0u);
}

// Each activation between two dense layers, checked through a cross-entropy loss.
using activations = boost::mpl::list<fnn::sigmoid, fnn::tanh, fnn::relu, fnn::leaky_relu<0.1>, fnn::elu<1.0>,
                                     fnn::elu<0.5>, fnn::selu, fnn::gelu, fnn::gelu_tanh, fnn::swish, fnn::prelu>;

BOOST_AUTO_TEST_CASE_TEMPLATE(activation_gradients, Act, activations) {
  fnn::basic_sequential<double, fnn::input<5>, fnn::dense<7>, Act, fnn::dense<3>> net{fnn::seed{7}};
  const auto x = random_matrix<double>(6, 5, 1, 1.5);
  const auto labels = random_labels(6, 3, 2);
  for (auto m : {fnn::mode::train, fnn::mode::eval})
    expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, m);
}

BOOST_AUTO_TEST_CASE(maxout_gradients) {
  fnn::basic_sequential<double, fnn::input<4>, fnn::dense<9>, fnn::maxout<3>, fnn::dense<2>> net{fnn::seed{3}};
  const auto x = random_matrix<double>(5, 4, 3);
  expect_gradients_match(net, x, random_labels(5, 2, 4), fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
}

BOOST_AUTO_TEST_CASE(batch_norm_gradients_train_and_eval) {
  using net_t = fnn::basic_sequential<double, fnn::input<4>, fnn::dense<6>, fnn::batch_norm, fnn::gelu, fnn::dense<3>>;
  net_t net{fnn::seed{5}};
  const auto x = random_matrix<double>(8, 4, 5, 2.0);
  const auto labels = random_labels(8, 3, 6);
  // Move gamma/beta and the running statistics away from their initial values first.
  fnn_test::plain_sgd sgd{0.3};
  for (int i = 0; i < 3; ++i) net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, sgd);
  expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
  expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, fnn::mode::eval);
}

BOOST_AUTO_TEST_CASE(layer_norm_gradients) {
  fnn::basic_sequential<double, fnn::input<5>, fnn::dense<6>, fnn::layer_norm, fnn::tanh, fnn::dense<2>> net{
      fnn::seed{9}};
  fnn_test::plain_sgd sgd{0.3};
  const auto x = random_matrix<double>(4, 5, 8);
  const auto labels = random_labels(4, 2, 9);
  net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, sgd);
  for (auto m : {fnn::mode::train, fnn::mode::eval})
    expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, m);
}

// Groups of 1 (the instance-norm case, zero input gradient), 2 and 4 features, and group_norm<1> (layer norm).
template <std::size_t Groups>
void check_group_norm_gradients() {
  fnn::basic_sequential<double, fnn::input<5>, fnn::dense<8>, fnn::group_norm<Groups>, fnn::gelu, fnn::dense<3>> net{
      fnn::seed{13}};
  fnn_test::plain_sgd sgd{0.3};
  const auto x = random_matrix<double>(6, 5, 14, 1.5);
  const auto labels = random_labels(6, 3, 15);
  net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, sgd);  // gamma, beta away from 1, 0
  for (auto m : {fnn::mode::train, fnn::mode::eval})
    expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, m);
}
BOOST_AUTO_TEST_CASE(group_norm_gradients) {
  check_group_norm_gradients<1>();
  check_group_norm_gradients<2>();
  check_group_norm_gradients<4>();
  check_group_norm_gradients<8>();
}

BOOST_AUTO_TEST_CASE(dropout_gradients_use_the_same_mask) {
  fnn::basic_sequential<double, fnn::input<5>, fnn::dense<8>, fnn::relu, fnn::dropout<0.4>, fnn::dense<3>> net{
      fnn::seed{11}};
  const auto x = random_matrix<double>(6, 5, 10);
  const auto labels = random_labels(6, 3, 11);
  for (auto m : {fnn::mode::train, fnn::mode::eval})
    expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, m);
}

BOOST_AUTO_TEST_CASE(dense_without_bias_and_initializer_override) {
  fnn::basic_sequential<double, fnn::input<3>, fnn::dense<3, 4>::without_bias::init<fnn::init::xavier_uniform>,
                        fnn::sigmoid, fnn::dense<2>>
      net{fnn::seed{12}};
  const auto x = random_matrix<double>(3, 3, 12);
  expect_gradients_match(net, x, random_labels(3, 2, 13), fnn::loss::softmax_cross_entropy{}, fnn::mode::train);
}

BOOST_AUTO_TEST_CASE(mse_and_bce_losses) {
  fnn::basic_sequential<double, fnn::input<4>, fnn::dense<5>, fnn::swish, fnn::dense<3>> net{fnn::seed{13}};
  const auto x = random_matrix<double>(5, 4, 14);
  const auto target = random_matrix<double>(5, 3, 15);
  expect_gradients_match(net, x, target, fnn::loss::mean_squared_error{}, fnn::mode::train);
  fnn::matrix<double> probs(5, 3);
  for (fnn::index_t i = 0; i < probs.size(); ++i) probs.data()[i] = double(i % 7) / 6.0;
  expect_gradients_match(net, x, probs, fnn::loss::binary_cross_entropy_with_logits{}, fnn::mode::train);
}

BOOST_AUTO_TEST_CASE(l1_and_l2_penalties) {
  fnn::basic_sequential<double, fnn::input<4>, fnn::dense<5>, fnn::elu<1.0>, fnn::dense<3>> net{fnn::seed{14}};
  const auto x = random_matrix<double>(5, 4, 16);
  const auto labels = random_labels(5, 3, 17);
  expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, fnn::mode::train,
                         fnn::penalty::l2{0.3});
  expect_gradients_match(net, x, labels, fnn::loss::softmax_cross_entropy{}, fnn::mode::train,
                         fnn::penalty::l1{0.2}, fnn::penalty::l2{0.1});
}

// A loss whose gradient is 1% off in one element.
struct wrong_mse {
  static constexpr std::size_t min_outputs = 1;
  static void validate(fnn::index_t, fnn::index_t, fnn::const_matrix_view<double>) {}
  double operator()(fnn::const_matrix_view<double> y, fnn::const_matrix_view<double> t,
                    fnn::matrix_view<double> g) const {
    const double v = fnn::loss::mean_squared_error{}(y, t, g);
    if (g.rows() > 0) g(0, 0) *= 1.01;  // a 1% error in one element
    return v;
  }
};

// The checker itself must notice a wrong gradient, or every test above could pass vacuously.
BOOST_AUTO_TEST_CASE(checker_detects_a_wrong_gradient) {
  fnn::basic_sequential<double, fnn::input<3>, fnn::dense<2>> net{fnn::seed{1}};
  const auto x = random_matrix<double>(4, 3, 1);
  const auto t = random_matrix<double>(4, 2, 2);
  const auto r = fnn::check_gradients(net, x.view(), t, wrong_mse{}, fnn::mode::train);
  BOOST_TEST(!r.passed);
  BOOST_TEST(r.max_relative_error > 1e-4);
}

}  // namespace
