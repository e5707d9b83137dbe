// Checkpoints move both ways between fnn and PyTorch: same names, shapes, dtypes and eval-mode logits.
// The PyTorch side (torch_interop.py, through python/fnn_torch.py) runs with FNN_TEST_PYTHON; without torch
// the tests say so and skip.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "helpers.hpp"

namespace {

using fnn_train::test::scratch_dir;
using small_t = fnn::sequential<fnn::input<784>, fnn::dense<256>, fnn::batch_norm, fnn::gelu, fnn::dense<10>>;

const std::string script = std::string(FNN_SOURCE_DIR) + "/tests/unit/train/torch_interop.py";

bool have_torch() {
  static const bool ok = std::system((std::string(FNN_TEST_PYTHON) + " -c 'import torch' 2>/dev/null").c_str()) == 0;
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

// Largest |y - expected| and the largest |expected| (at least 1), over a [rows, cols] result.
std::pair<double, double> max_error(fnn::const_matrix_view<float> y, const std::vector<float>& expected) {
  double err = 0, scale = 1;
  for (fnn::index_t i = 0; i < y.rows(); ++i)
    for (fnn::index_t j = 0; j < y.cols(); ++j) {
      const double e = expected[std::size_t(i * y.cols() + j)];
      err = std::max(err, std::abs(double(y(i, j)) - e));
      scale = std::max(scale, std::abs(e));
    }
  return {err, scale};
}

// What `fnn_torch.py eval` printed: its correct count and loss (-1 when the line is not there).
struct python_eval {
  long correct = -1, total = -1;
  double loss = -1;
  std::string output;
};

python_eval run_python_eval(const std::filesystem::path& checkpoint, const std::filesystem::path& data) {
  const std::string cmd = std::string(FNN_TEST_PYTHON) + " " FNN_SOURCE_DIR "/python/fnn_torch.py eval '" +
                          checkpoint.string() + "' --data '" + data.string() + "'";
  python_eval r;
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> p(::popen(cmd.c_str(), "r"), ::pclose);
  if (!p) return r;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p.get()) != nullptr) r.output += buf;
  const auto at = r.output.find("test loss ");
  if (at != std::string::npos)
    std::sscanf(r.output.c_str() + at, "test loss %lf (%ld/%ld", &r.loss, &r.correct, &r.total);
  return r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_interop)

// The main job end to end: fnn-train's checkpoint, rebuilt in torch by fnn_torch.sequential_from_checkpoint
// from its metadata, gives fnn's logits; fine-tuned by torch and saved by fnn_torch, fnn loads it and gives
// torch's logits; `fnn_torch.py eval` counts the same correct predictions and loss as fnn's evaluate.
BOOST_AUTO_TEST_CASE(fnn_train_checkpoint_round_trips_through_fnn_torch) {
  if (!have_torch()) return;
  scratch_dir dir("main_job");
  std::filesystem::create_directories(dir.path / "data");
  fnn_train::test::write_synthetic_mnist(dir.path / "data", 600, 200);
  fnn_train::options o;
  o.data = dir.path / "data";
  o.out = dir.path / "run";
  o.batch = 50;
  o.epochs = 1;
  o.subset = 100;  // 2 steps at a small lr: a model that is still wrong often, so the correct counts say something
  o.lr = 1e-4f;
  o.standardize = true;  // so eval must apply the statistics the metadata holds
  o.quiet = true;
  fnn_train::train(o);
  fnn_train::net_t net;
  fnn::io::load_model(o.out / "model.safetensors", net);
  const auto test = fnn_train::load_split(o.data, fnn::io::split::test, 0);

  constexpr fnn::index_t n = 6;
  fnn::matrix<float> x(n, 784);
  test.to_float(0, n, x.data());
  const auto y = net.infer(x.view());
  const std::vector<float> xv(x.data(), x.data() + n * 784), yv(y.data(), y.data() + n * 10);
  const std::vector<std::int64_t> labels(test.y.begin(), test.y.begin() + n);
  const std::vector<fnn::io::tensor_entry> t{fnn::io::make_tensor("x", {n, 784}, xv),
                                             fnn::io::make_tensor("logits", {n, 10}, yv),
                                             fnn::io::make_tensor("y", {n}, labels)};
  fnn::io::write_safetensors(dir.path / "fnn_io.safetensors", t);
  BOOST_REQUIRE(run_python("main", dir.path) == 0);

  // torch's fine-tuned model, in fnn.
  fnn_train::net_t tuned;
  const auto meta = fnn::io::load_model(dir.path / "torch_tuned.safetensors", tuned);
  BOOST_TEST(meta.at("fnn.architecture") == fnn_train::architecture);
  BOOST_TEST(tuned.layer<1>().batches_tracked() == net.layer<1>().batches_tracked() + 3);
  const auto io = fnn::io::read_safetensors(dir.path / "torch_io.safetensors");
  const auto expected = io.values<float>("logits", {n, 10});
  const auto [err, scale] = max_error(tuned.infer(x.view()), expected);
  BOOST_TEST_MESSAGE("fnn vs torch logits of the torch-tuned model: max abs difference " << err);
  BOOST_TEST(err <= 1e-5 * scale);
  const double moved = max_error(net.infer(x.view()), expected).first;
  BOOST_TEST(moved > 1e-3, "torch's 3 steps changed the logits by " << moved);

  // The same test accuracy and loss from torch as from fnn.
  const auto stdz = fnn_train::standardization_of(fnn::io::read_safetensors(o.out / "model.safetensors"));
  BOOST_TEST_REQUIRE(stdz.has_value());
  const auto e = fnn_train::evaluate(net, test, &*stdz);
  long correct = 0;
  for (int c = 0; c < fnn_train::classes; ++c) correct += e.confusion[std::size_t(c)][std::size_t(c)];
  const auto py = run_python_eval(o.out / "model.safetensors", o.data);
  BOOST_TEST_MESSAGE("fnn_torch.py eval: " << py.output);
  BOOST_TEST(py.total == long(test.size()));
  BOOST_TEST(py.correct == correct);
  BOOST_TEST((correct > 20 && correct < 180), "fnn's model gets " << correct << " of 200 right");
  BOOST_TEST(std::abs(py.loss - e.loss) <= 1e-5 * std::max(1.0, e.loss), "loss " << py.loss << " vs fnn " << e.loss);
}

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
