// load_model_part: a prefix of layers or tensors by name mapping, checked as strictly as load_model checks a whole file
// (every error names the file, the tensor and both dtypes/shapes) and all-or-nothing; the network's other tensors are
// left alone. Then the transfer-learning workflow: load a backbone, freeze it, train a head.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/optim/adam.hpp"
#include "io_test_support.hpp"

namespace {

using fnn_test::message_has;
using fnn_test::temp_dir;

// A trained backbone (layers 0-5) with a 3-class head, and the same backbone with a new 2-class head.
using source_t = fnn::sequential<fnn::input<6>, fnn::dense<5>, fnn::batch_norm, fnn::relu, fnn::dense<4>,
                                 fnn::batch_norm, fnn::relu, fnn::dense<3>>;
using target_t = fnn::sequential<fnn::input<6>, fnn::dense<5>, fnn::batch_norm, fnn::relu, fnn::dense<4>,
                                 fnn::batch_norm, fnn::relu, fnn::dense<2>>;
using head_t = fnn::sequential<fnn::input<4>, fnn::dense<3>>;

template <class Net>
std::vector<std::pair<std::string, std::vector<double>>> state_of(Net &net) {
  std::vector<std::pair<std::string, std::vector<double>>> s;
  net.for_each_parameter(
      [&](auto &p) { s.emplace_back(p.name(), std::vector<double>(p.value.begin(), p.value.end())); });
  net.for_each_buffer([&](auto &b) {
    if (b.counter)
      s.emplace_back(b.name(), std::vector<double>{double(*b.counter)});
    else
      s.emplace_back(b.name(), std::vector<double>(b.value.begin(), b.value.end()));
  });
  return s;
}

std::vector<double> tensor(const std::vector<std::pair<std::string, std::vector<double>>> &s, const std::string &n) {
  for (const auto &[name, v] : s)
    if (name == n) return v;
  BOOST_FAIL("no tensor " + n);
  return {};
}

// A source network with trained weights and running statistics, saved.
std::string saved_source(const temp_dir &dir, source_t &src) {
  fnn::optim::adamw opt{{.lr = 1e-2f}};
  fnn::matrix<float> x(16, 6);
  for (fnn::index_t i = 0; i < 16; ++i)
    for (fnn::index_t j = 0; j < 6; ++j) x(i, j) = float((i * 7 + j * 3) % 11) / 5.0f - 1.0f;
  std::vector<std::int32_t> y(16);
  for (std::size_t i = 0; i < 16; ++i) y[i] = std::int32_t(i % 3);
  for (int s = 0; s < 3; ++s) src.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  const auto path = (dir / "source.safetensors").string();
  fnn::io::save_model(path, src);
  return path;
}

BOOST_AUTO_TEST_CASE(a_prefix_of_layers_loads_by_name_and_leaves_the_rest) {
  temp_dir dir;
  source_t src{fnn::seed{1}};
  const auto path = saved_source(dir, src);
  target_t net{fnn::seed{2}};
  BOOST_CHECK_THROW(fnn::io::load_model(path, net),
                    fnn::shape_error);  // the whole file does not fit the head
  const auto before = state_of(net);
  const auto loaded = fnn::io::load_model_part(path, net, {.layers = 6});
  const std::vector<std::string> expected_names{"0.weight",
                                                "0.bias",
                                                "1.weight",
                                                "1.bias",
                                                "3.weight",
                                                "3.bias",
                                                "4.weight",
                                                "4.bias",
                                                "1.running_mean",
                                                "1.running_var",
                                                "1.num_batches_tracked",
                                                "4.running_mean",
                                                "4.running_var",
                                                "4.num_batches_tracked"};
  BOOST_TEST(loaded == expected_names, boost::test_tools::per_element());
  const auto after = state_of(net), source = state_of(src);
  for (const auto &n : expected_names) {
    BOOST_TEST_INFO(n);
    BOOST_TEST(tensor(after, n) == tensor(source, n), boost::test_tools::per_element());
  }
  BOOST_TEST(tensor(source, "1.num_batches_tracked")[0] == 3.0);
  for (const char *n : {"6.weight", "6.bias"}) {
    BOOST_TEST_INFO(n);
    BOOST_TEST(tensor(after, n) == tensor(before, n), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(tensors_load_by_name_mapping) {
  temp_dir dir;
  source_t src{fnn::seed{1}};
  const auto path = saved_source(dir, src);
  head_t head{fnn::seed{3}};
  const auto loaded =
      fnn::io::load_model_part(path, head, {.tensors = {{"6.weight", "0.weight"}, {"6.bias", "0.bias"}}});
  BOOST_TEST(loaded == (std::vector<std::string>{"0.weight", "0.bias"}), boost::test_tools::per_element());
  BOOST_TEST(tensor(state_of(head), "0.weight") == tensor(state_of(src), "6.weight"), boost::test_tools::per_element());
  BOOST_TEST(tensor(state_of(head), "0.bias") == tensor(state_of(src), "6.bias"), boost::test_tools::per_element());
  // Prefix and mapping together: the backbone by name, and the source's first batch norm into the second.
  target_t net{fnn::seed{2}};
  const auto before = state_of(net);
  fnn::io::load_model_part(path, net, {.layers = 3, .tensors = {{"4.running_var", "4.running_var"}}});
  const auto after = state_of(net);
  for (const char *n : {"0.weight", "1.running_mean", "4.running_var"}) {
    BOOST_TEST_INFO(n);
    BOOST_TEST(tensor(after, n) == tensor(state_of(src), n), boost::test_tools::per_element());
  }
  for (const char *n : {"3.weight", "4.running_mean"}) {
    BOOST_TEST_INFO(n);
    BOOST_TEST(tensor(after, n) == tensor(before, n), boost::test_tools::per_element());
  }
}

// Every error names the file and the tensors with their dtypes and shapes; the network is left unchanged.
template <class Net, class Exception = fnn::shape_error>
void expect_refused(const std::string &path, Net &net, const fnn::io::model_part &part,
                    std::initializer_list<std::string> fragments) {
  const auto before = state_of(net);
  BOOST_CHECK_EXCEPTION(fnn::io::load_model_part(path, net, part), Exception, message_has(fragments));
  const auto after = state_of(net);
  BOOST_TEST(after.size() == before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    BOOST_TEST_INFO(after[i].first);
    BOOST_TEST(after[i].second == before[i].second, boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(every_mismatch_is_refused_with_its_names_and_changes_nothing) {
  temp_dir dir;
  source_t src{fnn::seed{1}};
  const auto path = saved_source(dir, src);
  target_t net{fnn::seed{2}};
  const std::string head = path + ": the part of the checkpoint to load does not match this network:";
  expect_refused(path, net, {.layers = 7},  // the head differs
                 {head, "differs: expected 6.weight F32 [2, 4], found 6.weight F32 [3, 4]",
                  "differs: expected 6.bias F32 [2], found 6.bias F32 [3]"});
  expect_refused(path, net, {.layers = 8}, {"the part has layers [0, 8), the network only 7"});
  head_t small{fnn::seed{3}};
  expect_refused(path, small, {.tensors = {{"9.weight", "0.weight"}}},
                 {head, "not in the file: 9.weight (mapped to 0.weight)"});
  expect_refused(path, small, {.tensors = {{"6.weight", "0.gamma"}}},
                 {"not in the network: 0.gamma (mapped from 6.weight)"});
  expect_refused(path, small, {.tensors = {{"0.weight", "0.weight"}}},
                 {"differs: 0.weight -> 0.weight: expected 0.weight F32 [3, 4], found 0.weight F32 [5, 6]"});
  expect_refused(path, net, {.layers = 1, .tensors = {{"0.weight", "0.weight"}}},
                 {"loaded twice: 0.weight (from 0.weight and from 0.weight)"});
  expect_refused(
      path, net, {.tensors = {{"1.running_mean", "4.running_mean"}}},
      {"differs: 1.running_mean -> 4.running_mean: expected 4.running_mean F32 [4], found 1.running_mean F32 [5]"});
  expect_refused<target_t, fnn::value_error>(path, net, {}, {path + ": load_model_part was given no layers"});

  // Another dtype: a double network's checkpoint.
  fnn::basic_sequential<double, fnn::input<6>, fnn::dense<5>> wide{fnn::seed{4}};
  const auto f64 = (dir / "f64.safetensors").string();
  fnn::io::save_model(f64, wide);
  expect_refused(f64, net, {.layers = 1},
                 {f64 + ": the part", "differs: expected 0.weight F32 [5, 6], found 0.weight F64 [5, 6]"});

  // A file missing a tensor of the prefix, one with an extra tensor in it, one with a negative count.
  const std::vector<float> w(30, 0.5f), b(5, 0.25f), stats(5, 1.0f);
  const auto partial = (dir / "partial.safetensors").string();
  fnn::io::write_safetensors(partial,
                             std::vector<fnn::io::tensor_entry>{fnn::io::make_tensor<float>("0.weight", {5, 6}, w),
                                                                fnn::io::make_tensor<float>("0.extra", {5}, b),
                                                                fnn::io::make_tensor<float>("1.weight", {5}, b)});
  expect_refused(partial, net, {.layers = 2},
                 {"missing: 0.bias F32 [5]", "unexpected: 0.extra F32 [5]", "missing: 1.running_var F32 [5]"});
  const std::vector<std::int64_t> negative{-1};
  const auto counted = (dir / "counted.safetensors").string();
  fnn::io::write_safetensors(
      counted, std::vector<fnn::io::tensor_entry>{
                   fnn::io::make_tensor<float>("1.weight", {5}, b), fnn::io::make_tensor<float>("1.bias", {5}, b),
                   fnn::io::make_tensor<float>("1.running_mean", {5}, stats),
                   fnn::io::make_tensor<float>("1.running_var", {5}, stats),
                   fnn::io::make_tensor<std::int64_t>("1.num_batches_tracked", {}, negative)});
  expect_refused<target_t, fnn::io_error>(
      counted, net, {.tensors = {{"1.weight", "1.weight"}, {"1.num_batches_tracked", "1.num_batches_tracked"}}},
      {counted + ": '1.num_batches_tracked' is -1, a count must be >= 0"});
}

// The transfer-learning workflow: a pretrained backbone loaded and frozen, a new head trained on top. The backbone, its
// batch-norm statistics included, is still the file's after training.
BOOST_AUTO_TEST_CASE(a_loaded_frozen_backbone_stays_the_files_while_the_head_trains) {
  temp_dir dir;
  source_t src{fnn::seed{1}};
  const auto path = saved_source(dir, src);
  target_t net{fnn::seed{2}};
  fnn::io::load_model_part(path, net, {.layers = 6});
  net.freeze_layers(0, 6);
  const auto start = state_of(net);
  fnn::optim::adamw opt{{.lr = 1e-2f, .weight_decay = 0.1f}};
  fnn::matrix<float> x(12, 6);
  for (fnn::index_t i = 0; i < 12; ++i)
    for (fnn::index_t j = 0; j < 6; ++j) x(i, j) = float((i * 5 + j) % 7) / 3.0f - 1.0f;
  std::vector<std::int32_t> y(12);
  for (std::size_t i = 0; i < 12; ++i) y[i] = std::int32_t(i % 2);
  for (int s = 0; s < 4; ++s) net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  const auto end = state_of(net), source = state_of(src);
  for (std::size_t i = 0; i < end.size(); ++i) {
    const auto &[name, values] = end[i];
    BOOST_TEST_INFO(name);
    if (name[0] == '6')
      BOOST_TEST((values != start[i].second));
    else
      BOOST_TEST(values == tensor(source, name), boost::test_tools::per_element());
  }
}

}  // namespace
