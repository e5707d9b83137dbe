// fnn::train: metrics, early stopping, checkpoint averaging with batch-norm recomputation, ensembles and TTA.
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/train/average.hpp"
#include "fnn/train/early_stopping.hpp"
#include "fnn/train/ensemble.hpp"
#include "fnn/train/metrics.hpp"

namespace train = fnn::train;

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(argmax_accuracy_confusion) {
  // Rows predict 2, 0, 1 (first of the tied maxima), 2; labels 2, 1, 1, 0.
  fnn::matrix<float> s(4, 3, std::vector<float>{0, 1, 5, 9, 2, 3, 1, 4, 4, -1, -2, 0});
  const std::vector<std::int32_t> y{2, 1, 1, 0};
  BOOST_TEST(train::accuracy(s.view(), y) == 0.5);
  train::confusion_matrix cm(3);
  cm.add(s.view(), y);
  BOOST_TEST(cm(2, 2) == 1);
  BOOST_TEST(cm(1, 0) == 1);
  BOOST_TEST(cm(1, 1) == 1);
  BOOST_TEST(cm(0, 2) == 1);
  BOOST_TEST(cm.total() == 4);
  BOOST_TEST(cm.accuracy() == 0.5);
  BOOST_TEST(cm.class_accuracy(1) == 0.5);
  BOOST_TEST(cm.class_accuracy(0) == 0.0);
  BOOST_CHECK_THROW(cm.add(3, 0), fnn::value_error);
  BOOST_CHECK_THROW(train::accuracy(s.view(), std::vector<std::int32_t>{1}), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(early_stop)

BOOST_AUTO_TEST_CASE(patience_and_min_delta) {
  train::early_stopping s{{.patience = 2, .min_delta = 0.01}};
  BOOST_TEST(s.update(1.0));    // epoch 1: first is best
  BOOST_TEST(s.update(0.9));    // 2: better
  BOOST_TEST(!s.update(0.895)); // 3: better by less than min_delta: not an improvement
  BOOST_TEST(!s.should_stop());
  BOOST_TEST(!s.update(0.95));  // 4: second bad epoch
  BOOST_TEST(s.should_stop());
  BOOST_TEST(s.best_epoch() == 2);
  BOOST_TEST(s.best() == 0.9);
  train::early_stopping acc{{.patience = 1, .direction = train::goal::maximize}};
  BOOST_TEST(acc.update(0.5));
  BOOST_TEST(acc.update(0.6));
  BOOST_TEST(!acc.update(std::nan("")));  // a NaN never improves
  BOOST_TEST(acc.should_stop());
}

BOOST_AUTO_TEST_CASE(state_survives_metadata) {
  const std::vector<double> losses{1.0, 0.8, 0.85, 0.7, 0.75, 0.74, 0.9};
  train::early_stopping whole{{.patience = 3}};
  for (double l : losses) whole.update(l);
  train::early_stopping first{{.patience = 3}};
  for (int i = 0; i < 5; ++i) first.update(losses[std::size_t(i)]);
  fnn::io::metadata m;
  first.write_metadata(m);
  train::early_stopping resumed{{.patience = 3}};
  resumed.read_metadata("state", m);
  for (int i = 5; i < 7; ++i) resumed.update(losses[std::size_t(i)]);
  BOOST_TEST(resumed.best_epoch() == whole.best_epoch());
  BOOST_TEST(resumed.best() == whole.best());
  BOOST_TEST(resumed.should_stop() == whole.should_stop());
  BOOST_TEST(resumed.should_stop());  // epochs 5, 6, 7 after the best (4)
  m["fnn.early_stopping.bad_epochs"] = "4";
  BOOST_CHECK_THROW(resumed.read_metadata("state", m), fnn::io_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(averaging)

using net_t = fnn::sequential<fnn::input<3>, fnn::batch_norm, fnn::dense<4>, fnn::batch_norm, fnn::relu, fnn::dense<2>>;

BOOST_AUTO_TEST_CASE(average_of_checkpoints_is_the_elementwise_mean) {
  net_t a{fnn::seed{1}}, b{fnn::seed{2}}, c{fnn::seed{3}};
  const auto dir = std::filesystem::temp_directory_path() / ("fnn_avg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  fnn::io::save_model(dir / "a.safetensors", a);
  fnn::io::save_model(dir / "b.safetensors", b);
  net_t avg;
  train::average_checkpoints(avg, {dir / "a.safetensors", dir / "b.safetensors"});
  std::filesystem::remove_all(dir);
  std::vector<float> va, vb, vavg;
  a.for_each_parameter([&](fnn::parameter_ref<float>& p) { va.insert(va.end(), p.value.begin(), p.value.end()); });
  b.for_each_parameter([&](fnn::parameter_ref<float>& p) { vb.insert(vb.end(), p.value.begin(), p.value.end()); });
  avg.for_each_parameter([&](fnn::parameter_ref<float>& p) { vavg.insert(vavg.end(), p.value.begin(), p.value.end()); });
  BOOST_REQUIRE(va.size() == vavg.size());
  for (std::size_t i = 0; i < va.size(); ++i) BOOST_TEST_REQUIRE(vavg[i] == float((double(va[i]) + vb[i]) / 2));
  BOOST_CHECK_THROW(train::average_checkpoints(c, {}), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(batch_norm_statistics_are_the_equal_weight_batch_average) {
  net_t net{fnn::seed{4}};
  std::mt19937 g(5);
  std::normal_distribution<float> d(2.0f, 3.0f);
  std::vector<fnn::matrix<float>> batches;
  for (int b = 0; b < 3; ++b) {
    batches.emplace_back(5 + 3 * b, 3);  // batches of different sizes: each counts once, as update_bn
    for (float& v : batches.back().flat()) v = d(g);
  }
  train::recompute_batch_norm(net, 3, [&](fnn::index_t s) { return fnn::const_matrix_view<float>(batches[std::size_t(s)].view()); });
  // The first batch_norm sees the inputs themselves: its statistics are computable by hand.
  const auto& bn = net.layer<0>();
  for (int j = 0; j < 3; ++j) {
    double mean = 0, var = 0;
    for (const auto& x : batches) {
      double m = 0, v = 0;
      for (fnn::index_t i = 0; i < x.rows(); ++i) m += x(i, j) / double(x.rows());
      for (fnn::index_t i = 0; i < x.rows(); ++i) v += (x(i, j) - m) * (x(i, j) - m) / double(x.rows() - 1);
      mean += m / 3, var += v / 3;
    }
    BOOST_TEST(std::abs(bn.running_mean()[std::size_t(j)] - mean) < 1e-4 * (1 + std::abs(mean)));
    BOOST_TEST(std::abs(bn.running_var()[std::size_t(j)] - var) < 1e-4 * var);
  }
  std::int64_t tracked = -1;
  net.for_each_buffer([&](fnn::buffer_ref<float>& b) {
    if (b.counter != nullptr) tracked = *b.counter;
  });
  BOOST_TEST(tracked == 3);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(ensembles)

BOOST_AUTO_TEST_CASE(softmax_and_mean_probabilities) {
  fnn::matrix<float> a(1, 3, std::vector<float>{1000, 1001, 999}), b(1, 3, std::vector<float>{0, 0, 0});
  const auto p = train::softmax(a.view());
  const double e = std::exp(1.0), z = 1 + e + 1 / e;
  BOOST_TEST(std::abs(p(0, 1) - e / z) < 1e-6);  // no overflow at 1000
  train::mean_probabilities m;
  m.add(a.view());
  m.add(b.view());
  const auto avg = m.mean();
  BOOST_TEST(std::abs(avg(0, 0) - (1 / z + 1.0 / 3) / 2) < 1e-6);
  BOOST_TEST(std::abs(avg(0, 0) + avg(0, 1) + avg(0, 2) - 1) < 1e-6);
  fnn::matrix<float> wrong(2, 3);
  BOOST_CHECK_THROW(m.add(wrong.view()), fnn::shape_error);
}

BOOST_AUTO_TEST_CASE(tta_averages_over_the_transformed_images) {
  // A "model" whose logit 0 is the pixel at (0, 0) and logit 1 the pixel at (0, 2) of a 2x3 image: a flip
  // swaps them, so the TTA mean of {identity, flip} is symmetric.
  fnn::matrix<float> x(1, 6, std::vector<float>{5, 0, 0, 0, 0, 0});
  int calls = 0;
  const auto p = train::tta_probabilities(x.view(), 2, 3, {{0, 0, false}, {0, 0, true}}, [&](fnn::const_matrix_view<float> v) {
    ++calls;
    fnn::matrix<float> l(v.rows(), 2);
    for (fnn::index_t i = 0; i < v.rows(); ++i) l(i, 0) = v(i, 0), l(i, 1) = v(i, 2);
    return l;
  });
  BOOST_TEST(calls == 2);
  BOOST_TEST(std::abs(p(0, 0) - 0.5) < 1e-6);
  BOOST_TEST(train::default_tta().size() == 6u);
  BOOST_CHECK_THROW(train::tta_probabilities(x.view(), 2, 2, {{}}, [&](fnn::const_matrix_view<float> v) { return fnn::matrix<float>(v.rows(), 2); }),
                    fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()
