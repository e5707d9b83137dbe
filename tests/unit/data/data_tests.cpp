// fnn::data: standardization, seeded batches, augmentation, validation splits.
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "fnn/data/augment.hpp"
#include "fnn/data/batches.hpp"
#include "fnn/data/split.hpp"
#include "fnn/data/standardize.hpp"

namespace data = fnn::data;

namespace {
fnn::matrix<float> random_matrix(fnn::index_t n, fnn::index_t f, std::uint32_t seed, float offset = 0) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0, 1);
  fnn::matrix<float> x(n, f);
  for (fnn::index_t i = 0; i < n; ++i)
    for (fnn::index_t j = 0; j < f; ++j) x(i, j) = offset + float(j + 1) * d(g);
  return x;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(standardize)

BOOST_AUTO_TEST_CASE(train_statistics_give_zero_mean_unit_std) {
  auto x = random_matrix(500, 6, 1, 1000.0f);  // a large offset: a float sum of squares would cancel
  const auto s = data::standardizer::fit(x.view());
  s.apply(x.view());
  for (fnn::index_t j = 0; j < 6; ++j) {
    double m = 0, v = 0;
    for (fnn::index_t i = 0; i < 500; ++i) m += x(i, j);
    m /= 500;
    for (fnn::index_t i = 0; i < 500; ++i) v += (x(i, j) - m) * (x(i, j) - m);
    BOOST_TEST(std::abs(m) < 1e-3);
    BOOST_TEST(std::abs(std::sqrt(v / 500) - 1) < 1e-3);
  }
}

BOOST_AUTO_TEST_CASE(floor_and_constant_features) {
  fnn::matrix<float> x(4, 2);
  for (int i = 0; i < 4; ++i) x(i, 0) = 3.0f, x(i, 1) = float(i) * 1e-3f;
  const auto s = data::standardizer::fit(x.view(), {.min_std = 0.05});
  BOOST_TEST(s.std[0] == 0.05f);
  BOOST_TEST(s.std[1] == 0.05f);
  const auto z = data::standardizer::fit(x.view());
  BOOST_TEST(z.std[0] == 1.0f);  // constant: divide by 1, not by 0
}

BOOST_AUTO_TEST_CASE(metadata_round_trip_is_exact_and_checked) {
  const auto x = random_matrix(50, 5, 2);
  const auto s = data::standardizer::fit(x.view());
  fnn::io::metadata m;
  s.write_metadata(m);
  BOOST_TEST(m.count("fnn.standardize.mean") == 1u);
  const auto back = data::standardizer::read_metadata("f", m, 5);
  BOOST_REQUIRE(back.has_value());
  BOOST_TEST(back->mean == s.mean);
  BOOST_TEST(back->std == s.std);
  BOOST_TEST(!data::standardizer::read_metadata("f", fnn::io::metadata{}).has_value());
  BOOST_CHECK_THROW(data::standardizer::read_metadata("f", m, 6), fnn::io_error);
  auto bad = m;
  bad["fnn.standardize.std"] = "1,2,0,4,5";  // a zero std
  BOOST_CHECK_THROW(data::standardizer::read_metadata("f", bad), fnn::io_error);
  bad.erase("fnn.standardize.std");
  BOOST_CHECK_THROW(data::standardizer::read_metadata("f", bad), fnn::io_error);
  fnn::matrix<float> wrong(2, 4);
  BOOST_CHECK_THROW(s.apply(wrong.view()), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(batches)

BOOST_AUTO_TEST_CASE(epoch_shuffles_are_seeded_permutations) {
  auto r1 = data::epoch_engine(42, 3), r2 = data::epoch_engine(42, 3), r3 = data::epoch_engine(42, 4);
  const auto a = data::shuffled_indices(1000, r1), b = data::shuffled_indices(1000, r2),
             c = data::shuffled_indices(1000, r3);
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) BOOST_TEST_REQUIRE(sorted[std::size_t(i)] == i);
  // Uniform-ish: each position's index is spread over the range (mean of position 0 over many epochs ~ 499.5).
  double mean0 = 0;
  for (int e = 0; e < 400; ++e) {
    auto r = data::epoch_engine(7, e);
    mean0 += data::shuffled_indices(1000, r)[0];
  }
  BOOST_TEST(std::abs(mean0 / 400 - 499.5) < 50);
}

BOOST_AUTO_TEST_CASE(steps_and_batches) {
  BOOST_TEST(data::steps_per_epoch(10, 4) == 3);  // 4 + 4 + 2
  BOOST_TEST(data::steps_per_epoch(9, 4) == 2);   // a last batch of 1 is dropped (batch_norm)
  BOOST_TEST(data::steps_per_epoch(9, 4, 1) == 3);
  std::vector<std::int32_t> order{5, 3, 1, 0, 2, 4, 6, 7, 8, 9};
  const auto last = data::batch_of(order, 2, 4);
  BOOST_TEST(last.size() == 2u);
  BOOST_TEST(last[0] == 8);
  BOOST_CHECK_THROW(data::batch_of(order, 3, 4), fnn::shape_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(augment)

BOOST_AUTO_TEST_CASE(shift_and_flip_move_a_pixel_where_expected) {
  std::vector<float> img(6 * 5, 0.0f);
  img[2 * 5 + 1] = 1.0f;  // row 2, column 1
  auto a = img;
  data::shift_image(a.data(), 6, 5, 2, -1, false);  // right 2, up 1
  BOOST_TEST(a[1 * 5 + 3] == 1.0f);
  BOOST_TEST(std::count(a.begin(), a.end(), 1.0f) == 1);
  auto f = img;
  data::shift_image(f.data(), 6, 5, 0, 0, true);
  BOOST_TEST(f[2 * 5 + 3] == 1.0f);  // column 1 -> 5 - 1 - 1
  auto out = img;
  data::shift_image(out.data(), 6, 5, 4, 0, false);  // off the image: zero fill
  BOOST_TEST(std::count(out.begin(), out.end(), 0.0f) == 30);
}

BOOST_AUTO_TEST_CASE(random_augment_stays_within_max_shift) {
  const data::image_augment aug{{.rows = 9, .cols = 9, .max_shift = 1, .horizontal_flip = false}};
  std::mt19937_64 rng(3);
  std::set<std::pair<int, int>> seen;
  for (int t = 0; t < 200; ++t) {
    std::vector<float> img(81, 0.0f);
    img[4 * 9 + 4] = 1.0f;
    aug(img.data(), rng);
    const auto at = int(std::find(img.begin(), img.end(), 1.0f) - img.begin());
    BOOST_TEST_REQUIRE(at < 81);
    seen.insert({at / 9 - 4, at % 9 - 4});
  }
  BOOST_TEST(seen.size() == 9u);  // every shift in [-1, 1]^2 occurs, none beyond
  for (auto [dy, dx] : seen) BOOST_TEST((std::abs(dy) <= 1 && std::abs(dx) <= 1));
  BOOST_CHECK_THROW(data::image_augment({.rows = 4, .cols = 4, .max_shift = 4}), fnn::value_error);
}

BOOST_AUTO_TEST_CASE(gaussian_noise_has_the_given_std) {
  data::gaussian_noise noise(0.5f);
  std::mt19937_64 rng(9);
  std::vector<float> x(20000, 1.0f);
  noise(x, rng);
  double m = 0, v = 0;
  for (float e : x) m += e;
  m /= double(x.size());
  for (float e : x) v += (e - m) * (e - m);
  BOOST_TEST(std::abs(m - 1.0) < 0.02);
  BOOST_TEST(std::abs(std::sqrt(v / double(x.size())) - 0.5) < 0.02);
  BOOST_CHECK_THROW(data::gaussian_noise(-1.0f), fnn::value_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(split)

BOOST_AUTO_TEST_CASE(disjoint_complete_and_seeded) {
  std::vector<std::int32_t> labels(1000);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int32_t(i % 7);
  const auto s = data::validation_split(labels, {.fraction = 0.1, .seed = 5});
  BOOST_TEST(s.validation.size() == 100u);
  BOOST_TEST(s.train.size() == 900u);
  std::vector<std::int32_t> all = s.train;
  all.insert(all.end(), s.validation.begin(), s.validation.end());
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 1000; ++i) BOOST_TEST_REQUIRE(all[std::size_t(i)] == i);
  BOOST_TEST(std::is_sorted(s.validation.begin(), s.validation.end()));
  BOOST_TEST(data::validation_split(labels, {.fraction = 0.1, .seed = 5}).validation == s.validation);
  BOOST_TEST(data::validation_split(labels, {.fraction = 0.1, .seed = 6}).validation != s.validation);
  BOOST_TEST(data::validation_split(labels, {.count = 123, .seed = 5}).validation.size() == 123u);
}

BOOST_AUTO_TEST_CASE(stratified_keeps_class_shares) {
  std::vector<std::int32_t> labels;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < (c + 1) * 100; ++i) labels.push_back(c);  // 100, 200, 300
  std::shuffle(labels.begin(), labels.end(), std::mt19937(1));
  const auto s = data::validation_split(labels, {.count = 61, .stratified = true, .seed = 2});
  std::map<int, int> per;
  for (auto i : s.validation) ++per[labels[std::size_t(i)]];
  BOOST_TEST(s.validation.size() == 61u);
  // exact shares 10.17, 20.33, 30.5: floors 10, 20, 30 and the one left over to the largest remainder (class 2)
  BOOST_TEST(per[0] == 10);
  BOOST_TEST(per[1] == 20);
  BOOST_TEST(per[2] == 31);
}

BOOST_AUTO_TEST_CASE(bad_sizes_are_refused) {
  std::vector<std::int32_t> labels(10, 0);
  BOOST_CHECK_THROW(data::validation_split(labels, {.fraction = 0.1, .count = 2}), fnn::value_error);
  BOOST_CHECK_THROW(data::validation_split(labels, {.count = 10}), fnn::value_error);
  BOOST_CHECK_THROW(data::validation_split(labels, {}), fnn::value_error);
  BOOST_TEST(data::parse_split_size("0.2").fraction == 0.2);
  BOOST_TEST(data::parse_split_size("5000").count == 5000);
  BOOST_CHECK_THROW(data::parse_split_size("1.5"), fnn::value_error);
  BOOST_CHECK_THROW(data::parse_split_size("-3"), fnn::value_error);
  BOOST_CHECK_THROW(data::parse_split_size("ten"), fnn::value_error);
}

BOOST_AUTO_TEST_SUITE_END()
