// io/checkpoint.hpp on the job's network: exact round trips, PyTorch names, all-or-nothing loading.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <random>

#include "helpers.hpp"

namespace {

using fnn_train::net_t;
using fnn_train::test::bits_of;
using fnn_train::test::scratch_dir;

fnn::matrix<float> random_inputs(fnn::index_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  fnn::matrix<float> x(n, 784);
  for (float& v : x.flat()) v = u(gen);
  return x;
}

// A few AdamW steps so parameters, running statistics and optimizer moments are all non-trivial.
void train_a_little(net_t& net, fnn::optim::adamw& opt, int steps) {
  const auto x = random_inputs(32, 3);
  std::vector<std::int32_t> y(32);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = std::int32_t(i % 10);
  for (int s = 0; s < steps; ++s) net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
}

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(model_and_optimizer_round_trip_bit_for_bit) {
  scratch_dir dir("roundtrip");
  net_t net{fnn::seed{1}};
  fnn::optim::adamw opt{{.lr = 1e-3f, .weight_decay = 1e-2f}};
  train_a_little(net, opt, 5);
  fnn::io::save_model(dir.path / "model.safetensors", net, {{"epoch", "5"}});
  fnn::io::save_optimizer(dir.path / "optimizer.safetensors", net, opt, {{"optimizer", "adamw"}});

  net_t loaded{fnn::seed{99}};
  fnn::optim::adamw opt2{{.lr = 1e-3f, .weight_decay = 1e-2f}};
  const auto meta = fnn::io::load_model(dir.path / "model.safetensors", loaded);
  const auto ometa = fnn::io::load_optimizer(dir.path / "optimizer.safetensors", loaded, opt2);
  BOOST_TEST(meta.at("epoch") == "5");
  BOOST_TEST(ometa.at("optimizer") == "adamw");
  BOOST_TEST(opt2.step_count() == 5);

  const auto x = random_inputs(64, 7);
  const auto a = bits_of(net.infer(x.view()));
  const auto b = bits_of(loaded.infer(x.view()));
  BOOST_TEST(a == b);

  // The optimizer state came back too: one more step on each gives the same bits again.
  train_a_little(net, opt, 1);
  train_a_little(loaded, opt2, 1);
  BOOST_TEST(bits_of(net.infer(x.view())) == bits_of(loaded.infer(x.view())));
}

BOOST_AUTO_TEST_CASE(names_dtypes_and_shapes_follow_pytorch) {
  scratch_dir dir("names");
  net_t net{fnn::seed{1}};
  fnn::io::save_model(dir.path / "m.safetensors", net);
  const auto f = fnn::io::read_safetensors(dir.path / "m.safetensors");
  std::vector<std::string> names;
  for (const auto& t : f.tensors) names.push_back(t.name);
  const std::vector<std::string> expected{
      "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias", "6.weight", "6.bias",
      "1.running_mean", "1.running_var", "1.num_batches_tracked", "4.running_mean", "4.running_var",
      "4.num_batches_tracked"};
  BOOST_TEST(names == expected, boost::test_tools::per_element());
  BOOST_TEST(f.at("0.weight").shape == (std::vector<std::int64_t>{256, 784}), boost::test_tools::per_element());
  BOOST_TEST(f.at("6.weight").shape == (std::vector<std::int64_t>{10, 256}), boost::test_tools::per_element());
  BOOST_TEST(f.at("1.running_var").shape == (std::vector<std::int64_t>{256}), boost::test_tools::per_element());
  BOOST_TEST(f.at("1.num_batches_tracked").shape.empty());
  BOOST_TEST((f.at("1.num_batches_tracked").type == fnn::io::dtype::i64));
  BOOST_TEST((f.at("0.weight").type == fnn::io::dtype::f32));
}

BOOST_AUTO_TEST_CASE(other_architecture_is_a_clear_error_and_changes_nothing) {
  scratch_dir dir("mismatch");
  net_t net{fnn::seed{1}};
  fnn::io::save_model(dir.path / "m.safetensors", net);
  using small_t = fnn::sequential<fnn::input<784>, fnn::dense<128>, fnn::batch_norm, fnn::gelu, fnn::dense<10>>;
  small_t small{fnn::seed{2}};
  const auto x = random_inputs(8, 1);
  const auto before = bits_of(small.infer(x.view()));
  const std::string msg = error_of([&] { fnn::io::load_model(dir.path / "m.safetensors", small); });
  BOOST_TEST_MESSAGE("mismatch message:\n" << msg);
  BOOST_TEST(msg.find("does not match this network") != std::string::npos);
  BOOST_TEST(msg.find("differs: expected 0.weight F32 [128, 784], found 0.weight F32 [256, 784]") != std::string::npos);
  BOOST_TEST(msg.find("unexpected: 6.weight F32 [10, 256]") != std::string::npos);
  BOOST_TEST(msg.find("differs: expected 3.weight F32 [10, 128], found 3.weight F32 [256, 256]") != std::string::npos);
  BOOST_TEST(msg.find("expected:") != std::string::npos);
  BOOST_TEST(msg.find("found:") != std::string::npos);
  BOOST_TEST(bits_of(small.infer(x.view())) == before);

  // The reverse direction names what is missing.
  fnn::io::save_model(dir.path / "small.safetensors", small);
  const std::string msg2 = error_of([&] { fnn::io::load_model(dir.path / "small.safetensors", net); });
  BOOST_TEST(msg2.find("missing: 6.weight F32 [10, 256]") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_file_gives_the_readers_error) {
  scratch_dir dir("malformed");
  net_t net{fnn::seed{1}};
  fnn::io::save_model(dir.path / "m.safetensors", net);
  const auto size = std::filesystem::file_size(dir.path / "m.safetensors");
  std::filesystem::resize_file(dir.path / "m.safetensors", size - 100);
  BOOST_CHECK_THROW(fnn::io::load_model(dir.path / "m.safetensors", net), fnn::io_error);
  std::ofstream(dir.path / "junk.safetensors") << "not a checkpoint";
  BOOST_CHECK_THROW(fnn::io::load_model(dir.path / "junk.safetensors", net), fnn::io_error);
  BOOST_CHECK_THROW(fnn::io::load_model(dir.path / "absent.safetensors", net), fnn::io_error);
}

BOOST_AUTO_TEST_CASE(optimizer_state_of_another_kind_is_rejected) {
  scratch_dir dir("optmismatch");
  net_t net{fnn::seed{1}};
  fnn::optim::adamw opt;
  train_a_little(net, opt, 1);
  fnn::io::save_optimizer(dir.path / "o.safetensors", net, opt);
  fnn::optim::sgd sgd{{.lr = 0.1f, .momentum = 0.9f}};
  const std::string msg = error_of([&] { fnn::io::load_optimizer(dir.path / "o.safetensors", net, sgd); });
  BOOST_TEST(msg.find("missing: 0.weight.momentum_buffer F32 [200704]") != std::string::npos);
  BOOST_TEST(msg.find("unexpected: 0.weight.exp_avg F32 [200704]") != std::string::npos);
  BOOST_TEST(sgd.step_count() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
