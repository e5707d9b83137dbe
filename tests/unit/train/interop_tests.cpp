// Checkpoints move both ways between fnn and PyTorch: same names, shapes, dtypes and eval-mode logits.
// The PyTorch side (torch_interop.py) runs with FNN_TEST_PYTHON; without torch the tests say so and skip.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "helpers.hpp"

namespace {

using fnn_train::test::scratch_dir;
using small_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<10>>;

const std::string script = std::string(FNN_SOURCE_DIR) + "/tests/unit/train/torch_interop.py";

bool have_torch() {
  static const bool ok = std::system((std::string(FNN_TEST_PYTHON) + " -c 'import torch, numpy' 2>/dev/null").c_str()) == 0;
  if (!ok) {
    std::cerr << "SKIPPED torch interop: " << FNN_TEST_PYTHON << " cannot import torch (apt-get install python3-torch)\n";
    BOOST_TEST_MESSAGE("SKIPPED: no torch");
  }
  return ok;
}

int run_python(const std::string& mode, const std::filesystem::path& dir) {
  const std::string cmd = std::string(FNN_TEST_PYTHON) + " " + script + " " + mode + " '" + dir.string() + "'";
  return std::system(cmd.c_str());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_interop)

BOOST_AUTO_TEST_CASE(fnn_loads_a_torch_state_dict_and_gives_its_logits) {
  if (!have_torch()) return;
  scratch_dir dir("from_torch");
  BOOST_REQUIRE(run_python("make", dir.path) == 0);
  small_t net{fnn::seed{5}};
  fnn::io::load_model(dir.path / "torch_model.safetensors", net);
  BOOST_TEST(net.layer<1>().batches_tracked() == 17);
  const auto io = fnn::io::read_safetensors(dir.path / "torch_io.safetensors");
  const auto x = io.values<float>("x", {7, 784});
  const auto expected = io.values<float>("logits", {7, 10});
  const fnn::matrix<float> xm(7, 784, x);
  const auto y = net.infer(xm.view());
  double max_err = 0, max_abs = 1;
  for (fnn::index_t i = 0; i < 7; ++i)
    for (fnn::index_t j = 0; j < 10; ++j) {
      max_err = std::max(max_err, std::abs(double(y(i, j)) - double(expected[std::size_t(i * 10 + j)])));
      max_abs = std::max(max_abs, std::abs(double(expected[std::size_t(i * 10 + j)])));
    }
  BOOST_TEST_MESSAGE("fnn vs torch logits: max abs difference " << max_err);
  BOOST_TEST(max_err <= 1e-5 * max_abs);
}

BOOST_AUTO_TEST_CASE(torch_loads_an_fnn_checkpoint_and_gives_its_logits) {
  if (!have_torch()) return;
  scratch_dir dir("to_torch");
  small_t net{fnn::seed{6}};
  // Train a little so the batch-norm running statistics and counter are not their initial values.
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  fnn::matrix<float> x(32, 784);
  for (float& v : x.flat()) v = u(gen);
  std::vector<std::int32_t> labels(32);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = std::int32_t(i % 10);
  fnn::optim::adamw opt{{.lr = 1e-2f, .weight_decay = 1e-2f}};
  for (int s = 0; s < 3; ++s) net.train_step(x.view(), labels, fnn::loss::softmax_cross_entropy{}, opt);
  fnn::io::save_model(dir.path / "fnn_model.safetensors", net);
  const auto xs = x.view().rows_slice(0, 5);
  const auto y = net.infer(xs);
  std::vector<float> xv(xs.data(), xs.data() + 5 * 784), yv(y.data(), y.data() + 5 * 10);
  const std::vector<fnn::io::tensor_entry> t{fnn::io::make_tensor("x", {5, 784}, xv),
                                             fnn::io::make_tensor("logits", {5, 10}, yv)};
  fnn::io::write_safetensors(dir.path / "fnn_io.safetensors", t);
  BOOST_TEST(run_python("check", dir.path) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
