// Bad input gets a clear error that names the problem, and changes nothing (parameters, gradients,
// running statistics).
#include <boost/test/unit_test.hpp>
#include <string>

#include "fnn/fnn.hpp"
#include "helpers.hpp"

namespace {

using net_t = fnn::sequential<fnn::input<6>, fnn::dense<8>, fnn::batch_norm, fnn::relu, fnn::dense<3>>;

auto message_contains(std::string fragment) {
  return [fragment](const std::exception& e) {
    const bool ok = std::string(e.what()).find(fragment) != std::string::npos;
    if (!ok) BOOST_TEST_MESSAGE("message was: " << e.what());
    return ok;
  };
}

struct fixture {
  net_t net{fnn::seed{1}};
  fnn_test::plain_sgd sgd{0.1};
  fnn::loss::softmax_cross_entropy ce;
  fixture() {  // one good step so gradients and running statistics are not at their initial values
    const auto x = fnn_test::random_matrix<float>(4, 6, 1);
    net.train_step(x.view(), fnn_test::random_labels(4, 3, 2), ce, sgd);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(bad_input, fixture)

BOOST_AUTO_TEST_CASE(wrong_width) {
  const auto before = fnn_test::snapshot(net);
  const auto x = fnn_test::random_matrix<float>(4, 5, 1);
  BOOST_CHECK_EXCEPTION(net.train_step(x.view(), fnn_test::random_labels(4, 3, 2), ce, sgd), fnn::shape_error,
                        message_contains("fnn: input has 5 features per sample, the network expects 6"));
  BOOST_CHECK_EXCEPTION(net.infer(x.view()), fnn::shape_error, message_contains("5 features"));
  BOOST_TEST(fnn_test::snapshot(net) == before);
}

BOOST_AUTO_TEST_CASE(labels_out_of_range) {
  const auto before = fnn_test::snapshot(net);
  const auto x = fnn_test::random_matrix<float>(4, 6, 1);
  const std::vector<std::int32_t> high{0, 1, 3, 2}, negative{0, -1, 1, 2};
  BOOST_CHECK_EXCEPTION(net.train_step(x.view(), high, ce, sgd), fnn::value_error,
                        message_contains("label 3 at index 2 is out of range [0, 3)"));
  BOOST_CHECK_EXCEPTION(net.train_step(x.view(), negative, ce, sgd), fnn::value_error,
                        message_contains("label -1 at index 1"));
  BOOST_TEST(fnn_test::snapshot(net) == before);
}

BOOST_AUTO_TEST_CASE(label_count_mismatch) {
  const auto before = fnn_test::snapshot(net);
  const auto x = fnn_test::random_matrix<float>(4, 6, 1);
  BOOST_CHECK_EXCEPTION(net.train_step(x.view(), fnn_test::random_labels(3, 3, 2), ce, sgd), fnn::shape_error,
                        message_contains("got 3 labels for a batch of 4"));
  BOOST_TEST(fnn_test::snapshot(net) == before);
}

BOOST_AUTO_TEST_CASE(empty_batch) {
  const auto before = fnn_test::snapshot(net);
  fnn::matrix<float> x(0, 6);
  BOOST_CHECK_EXCEPTION(net.train_step(x.view(), std::vector<std::int32_t>{}, ce, sgd), fnn::shape_error,
                        message_contains("empty batch"));
  BOOST_CHECK_EXCEPTION(net.infer(x.view()), fnn::shape_error, message_contains("empty batch"));
  BOOST_TEST(fnn_test::snapshot(net) == before);
}

BOOST_AUTO_TEST_CASE(single_sample_in_train_mode_with_batch_norm) {
  const auto before = fnn_test::snapshot(net);
  const auto x = fnn_test::random_matrix<float>(1, 6, 1);
  BOOST_CHECK_EXCEPTION(net.train_step(x.view(), fnn_test::random_labels(1, 3, 2), ce, sgd), fnn::value_error,
                        message_contains("batch_norm needs at least 2"));
  BOOST_TEST(fnn_test::snapshot(net) == before);
  BOOST_TEST(net.infer(x.view()).rows() == 1);  // one sample is fine in eval mode
}

BOOST_AUTO_TEST_CASE(dense_target_shape_and_range) {
  fnn::sequential<fnn::input<6>, fnn::dense<3>> reg{fnn::seed{2}};
  const auto before = fnn_test::snapshot(reg);
  const auto x = fnn_test::random_matrix<float>(4, 6, 1);
  const fnn::matrix<float> t(4, 2);
  BOOST_CHECK_EXCEPTION(reg.train_step(x.view(), t, fnn::loss::mean_squared_error{}, sgd), fnn::shape_error,
                        message_contains("mean_squared_error target is 4x2, the network output is 4x3"));
  fnn::matrix<float> p(4, 3);
  p(2, 1) = 1.5f;
  BOOST_CHECK_EXCEPTION(reg.train_step(x.view(), p, fnn::loss::binary_cross_entropy_with_logits{}, sgd),
                        fnn::value_error, message_contains("target at (2, 1) is 1.5"));
  BOOST_TEST(fnn_test::snapshot(reg) == before);
}

BOOST_AUTO_TEST_CASE(backward_shape) {
  const auto x = fnn_test::random_matrix<float>(4, 6, 1);
  net.forward(x.view());
  const fnn::matrix<float> g(4, 2);
  BOOST_CHECK_EXCEPTION(net.backward(g.view()), fnn::shape_error,
                        message_contains("output gradient is 4x2, the last forward produced 4x3"));
  net_t fresh;
  const fnn::matrix<float> g3(4, 3);
  BOOST_CHECK_EXCEPTION(fresh.backward(g3.view()), fnn::value_error, message_contains("before forward"));
}

BOOST_AUTO_TEST_SUITE_END()
