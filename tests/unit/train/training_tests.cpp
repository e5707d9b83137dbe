// The job itself (fnn_train::train, what fnn-train runs): learning on real data, exact resume, divergence.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "helpers.hpp"

namespace {

using fnn_train::test::scratch_dir;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(training)

BOOST_AUTO_TEST_CASE(short_run_on_fashion_mnist_beats_chance_clearly) {
  if (!fnn_train::test::have_fashion_mnist()) {
    std::cerr << "SKIPPED short_run_on_fashion_mnist: " << fnn_train::test::fashion_mnist
              << " not found (apt-get install dataset-fashion-mnist)\n";
    BOOST_TEST_MESSAGE("SKIPPED: no Fashion-MNIST");
    return;
  }
  scratch_dir dir("real");
  fnn_train::options o;
  o.data = fnn_train::test::fashion_mnist;
  o.out = dir.path;
  o.subset = 3000;
  o.test_subset = 2000;
  o.batch = 32;
  o.epochs = 3;  // 282 steps
  o.quiet = true;
  const auto r = fnn_train::train(o);
  BOOST_TEST_MESSAGE("test accuracy after 282 steps on 3000 samples: " << r.test.accuracy);
  BOOST_TEST(r.test.accuracy > 0.6);
  BOOST_TEST(std::filesystem::exists(dir.path / "model.safetensors"));
  // metrics.csv: the header and one row per epoch.
  const std::string csv = slurp(dir.path / "metrics.csv");
  BOOST_TEST(std::count(csv.begin(), csv.end(), '\n') == 4);
  BOOST_TEST(csv.rfind("epoch,step,lr,", 0) == 0);
}

BOOST_AUTO_TEST_CASE(resume_reproduces_an_uninterrupted_run_exactly) {
  scratch_dir data("resume_data"), a("resume_a"), b("resume_b");
  fnn_train::test::write_synthetic_mnist(data.path, 600, 200);
  fnn_train::options o;
  o.data = data.path;
  o.batch = 50;
  o.epochs = 2;
  o.augment = true;
  o.noise = 0.05f;
  o.standardize = true;
  o.quiet = true;
  o.out = a.path;
  const auto full = fnn_train::train(o);
  o.out = b.path;
  o.stop_after = 1;
  fnn_train::train(o);
  o.stop_after = 0;
  o.resume = true;
  const auto resumed = fnn_train::train(o);
  BOOST_TEST(resumed.epochs_run == 1);
  BOOST_TEST(full.test.accuracy > 0.5);  // the synthetic bands are easy
  BOOST_TEST(resumed.test.accuracy == full.test.accuracy);
  BOOST_TEST((slurp(a.path / "model.safetensors") == slurp(b.path / "model.safetensors")));
  BOOST_TEST((slurp(a.path / "optimizer.safetensors") == slurp(b.path / "optimizer.safetensors")));
  // Same metrics apart from the timing columns.
  auto strip = [](const std::string& csv) {
    std::istringstream in(csv);
    std::string line, out;
    while (std::getline(in, line)) {
      std::size_t cut = 0;
      for (int k = 0; k < 7; ++k) cut = line.find(',', cut) + 1;
      out += line.substr(0, cut) + "\n";
    }
    return out;
  };
  BOOST_TEST(strip(slurp(a.path / "metrics.csv")) == strip(slurp(b.path / "metrics.csv")));
}

BOOST_AUTO_TEST_CASE(divergence_stops_and_keeps_the_last_good_checkpoint) {
  scratch_dir data("div_data"), out("div_out");
  fnn_train::test::write_synthetic_mnist(data.path, 200, 50);
  fnn_train::options o;
  o.data = data.path;
  o.out = out.path;
  o.batch = 50;
  o.epochs = 1;
  o.quiet = true;
  fnn_train::train(o);
  const std::string good = slurp(out.path / "model.safetensors");
  o.resume = true;
  o.epochs = 3;
  o.optimizer = "adamw";
  o.lr = 1e30f;  // blows up within the first steps of epoch 2
  std::string msg;
  try {
    fnn_train::train(o);
  } catch (const fnn_train::diverged& e) {
    msg = e.what();
  }
  BOOST_TEST_MESSAGE("divergence message: " << msg);
  BOOST_TEST(msg.find("diverged at epoch 2") != std::string::npos);
  BOOST_TEST(msg.find("last good checkpoint (epoch 1)") != std::string::npos);
  BOOST_TEST((slurp(out.path / "model.safetensors") == good));
}

BOOST_AUTO_TEST_CASE(missing_data_directory_says_how_to_get_it) {
  fnn_train::options o;
  o.data = "/nonexistent/fashion";
  o.quiet = true;
  try {
    fnn_train::train(o);
    BOOST_FAIL("no error");
  } catch (const fnn::io_error& e) {
    const std::string m = e.what();
    BOOST_TEST(m.find("apt-get install dataset-fashion-mnist") != std::string::npos);
    BOOST_TEST(m.find("--data") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
