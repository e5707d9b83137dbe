// End to end: a small network learns a synthetic task (three Gaussian blobs in 8-D).
#include <boost/test/unit_test.hpp>
#include <random>

#include "fnn/fnn.hpp"
#include "helpers.hpp"

namespace {

struct blobs {
  fnn::matrix<float> x;
  std::vector<std::int32_t> y;
};

blobs make_blobs(fnn::index_t n, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  blobs b{fnn::matrix<float>(n, 8), std::vector<std::int32_t>(std::size_t(n))};
  for (fnn::index_t i = 0; i < n; ++i) {
    const int c = int(i % 3);
    b.y[std::size_t(i)] = c;
    for (fnn::index_t j = 0; j < 8; ++j) b.x(i, j) = noise(g) + (j % 3 == c ? 2.0f : 0.0f);
  }
  return b;
}

double accuracy(fnn::const_matrix_view<float> logits, const std::vector<std::int32_t>& y) {
  std::size_t hit = 0;
  for (fnn::index_t i = 0; i < logits.rows(); ++i) {
    fnn::index_t best = 0;
    for (fnn::index_t j = 1; j < logits.cols(); ++j)
      if (logits(i, j) > logits(i, best)) best = j;
    hit += best == y[std::size_t(i)];
  }
  return double(hit) / double(y.size());
}

}  // namespace

BOOST_AUTO_TEST_CASE(loss_falls_and_accuracy_beats_chance) {
  using net_t = fnn::sequential<fnn::input<8>, fnn::dense<32>, fnn::batch_norm, fnn::gelu, fnn::dropout<0.1>,
                                fnn::dense<32>, fnn::layer_norm, fnn::swish, fnn::dense<3>>;
  net_t net{fnn::seed{42}};
  const auto train = make_blobs(600, 1), test = make_blobs(300, 2);
  fnn_test::plain_sgd sgd{0.1};
  float first = 0, last = 0;
  for (int epoch = 0; epoch < 20; ++epoch) {
    float sum = 0;
    for (fnn::index_t b = 0; b < 600; b += 50) {
      const std::vector<std::int32_t> labels(train.y.begin() + b, train.y.begin() + b + 50);
      sum += net.train_step(train.x.view().rows_slice(b, 50), labels, fnn::loss::softmax_cross_entropy{}, sgd,
                            fnn::penalty::l2{1e-4});
    }
    if (epoch == 0) first = sum / 12;
    last = sum / 12;
  }
  BOOST_TEST_MESSAGE("mean loss, first epoch " << first << ", last epoch " << last);
  BOOST_TEST(last < 0.5f * first);
  const double acc = accuracy(net.infer(test.x.view()), test.y);
  BOOST_TEST_MESSAGE("test accuracy " << acc);
  BOOST_TEST(acc > 0.85);  // chance is 1/3; the Bayes rate of these blobs is about 0.93
}
