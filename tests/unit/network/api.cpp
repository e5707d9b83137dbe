// The API traps of a first hour with fnn: infer() results that a later call rewrote, targets given as
// mutable views, and row slices past the end of a data set.
#include <boost/test/unit_test.hpp>
#include <string>

#include "fnn/fnn.hpp"
#include "helpers.hpp"

namespace {

using fnn_test::random_matrix;
using net_t = fnn::sequential<fnn::input<5>, fnn::dense<7>, fnn::tanh, fnn::dense<3>>;

auto message_is(std::string text) {
  return [text](const std::exception& e) {
    if (e.what() != text) BOOST_TEST_MESSAGE("message was: " << e.what());
    return e.what() == text;
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(infer_results)

BOOST_AUTO_TEST_CASE(a_second_infer_leaves_the_first_result_alone) {
  net_t net{fnn::seed{1}};
  const auto a = random_matrix<float>(4, 5, 1), b = random_matrix<float>(4, 5, 2, 3.0);
  const auto first = net.infer(a.view());
  const fnn::matrix<float> copy = first;
  const auto second = net.infer(b.view());
  BOOST_TEST(first.flat() != second.flat(), boost::test_tools::per_element());  // different inputs ...
  BOOST_TEST(first.flat() == copy.flat(), boost::test_tools::per_element());    // ... and the first kept its values
}

BOOST_AUTO_TEST_CASE(infer_into_and_infer_view_give_the_same_values) {
  net_t net{fnn::seed{2}};
  const auto x = random_matrix<float>(6, 5, 3);
  const auto owned = net.infer(x.view());
  fnn::matrix<float> out(6, 3);
  net.infer_into(x.view(), out.view());
  BOOST_TEST(out.flat() == owned.flat(), boost::test_tools::per_element());
  // A row slice of a bigger matrix is a valid output (ld != cols).
  fnn::matrix<float> wide(8, 3);
  net.infer_into(x.view(), wide.view().rows_slice(1, 6));
  for (fnn::index_t i = 0; i < 6; ++i)
    for (fnn::index_t j = 0; j < 3; ++j) BOOST_TEST(wide(i + 1, j) == owned(i, j));
  const auto v = net.infer_view(x.view());
  BOOST_TEST(v.rows() == 6);
  for (fnn::index_t i = 0; i < 6; ++i)
    for (fnn::index_t j = 0; j < 3; ++j) BOOST_TEST(v(i, j) == owned(i, j));
  fnn::matrix<float> wrong(5, 3);
  BOOST_CHECK_EXCEPTION(net.infer_into(x.view(), wrong.view()), fnn::shape_error,
                        message_is("fnn: infer_into output is 5x3, the network gives 6x3 for this input"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(read_only_arguments)

// The same mutable row slice is accepted as input and, now, as a dense target, by every entry point.
BOOST_AUTO_TEST_CASE(mutable_views_are_accepted_as_targets) {
  fnn::sequential<fnn::input<5>, fnn::dense<6>, fnn::relu, fnn::dense<2>> net{fnn::seed{3}};
  auto x = random_matrix<float>(10, 5, 4);
  auto y = random_matrix<float>(10, 2, 5);
  auto p = random_matrix<float>(10, 2, 6);
  for (float& v : p.flat()) v = v > 0 ? 1.f : 0.f;
  fnn_test::plain_sgd sgd{0.01};
  const fnn::matrix_view<float> xb = x.view().rows_slice(0, 4), yb = y.view().rows_slice(0, 4),
                                pb = p.view().rows_slice(0, 4);
  const float mse = net.train_step(xb, yb, fnn::loss::mean_squared_error{}, sgd);
  const float bce = net.train_step(xb, pb, fnn::loss::binary_cross_entropy_with_logits{}, sgd);
  BOOST_TEST(std::isfinite(mse));
  BOOST_TEST(std::isfinite(bce));
  BOOST_TEST(std::isfinite(net.compute_gradients(xb, yb, fnn::loss::mean_squared_error{}, fnn::mode::train)));
  fnn::loss::mean_squared_error::validate(4, 2, yb);
  fnn::loss::binary_cross_entropy_with_logits::validate(4, 2, pb);
  BOOST_TEST(net.infer(xb).rows() == 4);

  // The mutable and the const view give the same loss.
  const fnn::const_matrix_view<float> ycb = yb;
  BOOST_TEST(net.compute_gradients(xb, yb, fnn::loss::mean_squared_error{}, fnn::mode::eval) ==
             net.compute_gradients(xb, ycb, fnn::loss::mean_squared_error{}, fnn::mode::eval));

  fnn::basic_sequential<double, fnn::input<3>, fnn::dense<4>, fnn::tanh, fnn::dense<2>> dnet{fnn::seed{4}};
  auto xd = random_matrix<double>(6, 3, 7);
  auto yd = random_matrix<double>(6, 2, 8);
  const auto r = fnn::check_gradients(dnet, xd.view().rows_slice(1, 4), yd.view().rows_slice(1, 4),
                                      fnn::loss::mean_squared_error{}, fnn::mode::train);
  BOOST_TEST(r.passed);
}

BOOST_AUTO_TEST_CASE(rows_slice_checks_its_range) {
  fnn::matrix<float> data(10, 3);
  BOOST_TEST(data.view().rows_slice(8, 2).rows() == 2);
  BOOST_TEST(data.view().rows_slice(10, 0).rows() == 0);
  // The last batch of 4 from row 8 of 10 used to read two rows past the end.
  BOOST_CHECK_EXCEPTION(data.view().rows_slice(8, 4), fnn::shape_error,
                        message_is("fnn: rows_slice(first 8, count 4) of a view with 10 rows"));
  const fnn::const_matrix_view<float> c = data.view();
  BOOST_CHECK_THROW(c.rows_slice(11, 0), fnn::shape_error);
  BOOST_CHECK_THROW(c.rows_slice(-1, 2), fnn::shape_error);
  BOOST_CHECK_THROW(c.rows_slice(0, -1), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()
