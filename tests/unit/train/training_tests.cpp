// The job itself (fnn_train::train, what fnn-train runs): learning on real data, exact resume, divergence.
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <optional>
#include <fstream>
#include <iostream>
#include <sstream>

#include "helpers.hpp"

namespace {

using fnn_train::test::scratch_dir;

using fnn_train::test::slurp;

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
  const auto sa = fnn::io::read_safetensors(a.path / "state.safetensors");
  const auto sb = fnn::io::read_safetensors(b.path / "state.safetensors");
  BOOST_TEST_REQUIRE(sa.tensors.size() == sb.tensors.size());
  for (std::size_t i = 0; i < sa.tensors.size(); ++i)
    BOOST_TEST((sa.tensors[i].bytes == sb.tensors[i].bytes), sa.tensors[i].name);
  BOOST_TEST(fnn_train::test::metrics_without_timings(slurp(a.path / "metrics.csv")) ==
             fnn_train::test::metrics_without_timings(slurp(b.path / "metrics.csv")));
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

namespace {

// A finished one-epoch run on synthetic data in `out` (options returned for a resume).
fnn_train::options one_epoch_run(const std::filesystem::path& data, const std::filesystem::path& out) {
  fnn_train::test::write_synthetic_mnist(data, 200, 50);
  fnn_train::options o;
  o.data = data;
  o.out = out;
  o.batch = 50;
  o.epochs = 1;
  o.quiet = true;
  fnn_train::train(o);
  return o;
}

std::string train_error(const fnn_train::options& o) {
  try {
    fnn_train::train(o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Rewrites the state with one metadata entry replaced (and a valid checksum): a forged, not a damaged, file.
// ("step" is the optimizer's step count, written by save_training_state itself.)
void forge_state(const std::filesystem::path& out, const std::string& key, const std::optional<std::string>& value) {
  fnn_train::net_t net;
  fnn::optim::adamw opt{{.lr = 1e-3f, .weight_decay = 1e-2f}};
  auto meta = fnn::io::load_training_state(out / "state.safetensors", net, opt);
  if (key == "step") opt.set_step_count(std::stoll(*value));
  meta.erase("fnn.content_crc32");
  if (value) meta[key] = *value;
  else meta.erase(key);
  fnn::io::save_training_state(out / "state.safetensors", net, opt, meta);
}

}  // namespace

BOOST_AUTO_TEST_CASE(resume_parses_every_number_of_the_state_strictly) {
  scratch_dir data("strict_data"), out("strict_out");
  auto o = one_epoch_run(data.path, out.path);
  o.resume = true;
  o.epochs = 3;
  const std::string good = slurp(out.path / "state.safetensors");
  for (const auto& [value, expect] : std::vector<std::pair<std::optional<std::string>, std::string>>{
           {"2147483647", "got \"2147483647\""},
           {"7", "past the --epochs 3"},
           {"-3", "\"epoch\" must be an integer in [1, 1073741824], got \"-3\""},
           {std::nullopt, "has no \"epoch\""},
           {"one", "got \"one\""},
           {"1x", "got \"1x\""},
           {" 1", "got \" 1\""},
           {"99999999999999999999", "got \"99999999999999999999\""}}) {
    forge_state(out.path, "epoch", value);
    const std::string msg = train_error(o);
    BOOST_TEST(msg.find(expect) != std::string::npos, "epoch " << value.value_or("(missing)") << ": " << msg);
    BOOST_TEST(msg.find("state.safetensors") != std::string::npos, msg);
  }
  forge_state(out.path, "epoch", "1");
  forge_state(out.path, "step", "5");  // the run has 4 steps per epoch
  BOOST_TEST(train_error(o).find("step 5 after epoch 1 does not match 4 steps per epoch") != std::string::npos);
  forge_state(out.path, "step", "4");
  forge_state(out.path, "metrics", "");
  BOOST_TEST(train_error(o).find("metrics rows for 0 epochs") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_damaged_state_is_refused_by_its_checksum) {
  scratch_dir data("crc_data"), out("crc_out");
  auto o = one_epoch_run(data.path, out.path);
  std::string bytes = slurp(out.path / "state.safetensors");
  bytes[bytes.size() - 100] ^= 0x10;  // one bit of one optimizer moment
  std::ofstream(out.path / "state.safetensors", std::ios::binary | std::ios::trunc) << bytes;
  o.resume = true;
  o.epochs = 2;
  const std::string msg = train_error(o);
  BOOST_TEST(msg.find("content checksum mismatch") != std::string::npos, msg);
  BOOST_TEST(msg.find("state.safetensors") != std::string::npos, msg);
}

BOOST_AUTO_TEST_CASE(an_update_that_makes_the_weights_non_finite_is_never_checkpointed) {
  scratch_dir data("nan_data"), out("nan_out");
  fnn_train::test::write_synthetic_mnist(data.path, 128, 50);
  fnn_train::options o;
  o.data = data.path;
  o.out = out.path;
  o.batch = 128;  // one step per epoch: the loss of that step is computed before its update blows up
  o.epochs = 1;
  o.lr = 1e38f;
  o.quiet = true;
  std::string msg;
  try {
    fnn_train::train(o);
  } catch (const fnn_train::diverged& e) {
    msg = e.what();
  }
  BOOST_TEST(msg.find("diverged at epoch 1 (optimizer step 1)") != std::string::npos, msg);
  BOOST_TEST(msg.find("no checkpoint was written") != std::string::npos, msg);
  BOOST_TEST(!std::filesystem::exists(out.path / "state.safetensors"));
  BOOST_TEST(!std::filesystem::exists(out.path / "model.safetensors"));

  // With a good epoch first, the message points at it and it stays finite and intact.
  o.lr = 1e-3f;
  o.out = out.path / "second";
  fnn_train::train(o);
  const std::string good = slurp(o.out / "state.safetensors");
  o.resume = true;
  o.epochs = 3;
  o.lr = 1e38f;
  o.schedule = "constant";
  msg.clear();
  try {
    fnn_train::train(o);
  } catch (const fnn_train::diverged& e) {
    msg = e.what();
  }
  BOOST_TEST(msg.find("diverged at epoch 2") != std::string::npos, msg);
  BOOST_TEST(msg.find("last good checkpoint (epoch 1)") != std::string::npos, msg);
  BOOST_TEST((slurp(o.out / "state.safetensors") == good));
}

BOOST_AUTO_TEST_CASE(the_standardize_file_is_taken_only_from_the_checkpoint_directory) {
  scratch_dir dir("stdz_path");
  const auto ckpt = dir.path / "model.safetensors";
  std::ofstream(dir.path / "standardize.safetensors") << "x";
  BOOST_TEST(fnn_train::standardize_path_of(ckpt, "standardize.safetensors") == dir.path / "standardize.safetensors");
  auto refused = [&](const std::string& name, const std::string& expect) {
    try {
      fnn_train::standardize_path_of(ckpt, name);
    } catch (const fnn::io_error& e) {
      const std::string m = e.what();
      BOOST_TEST(m.find(expect) != std::string::npos, name << ": " << m);
      return;
    }
    BOOST_ERROR(name << " was accepted");
  };
  refused("/etc/passwd", "must be a file name in the checkpoint's directory");
  refused("../standardize.safetensors", "must be a file name");
  refused("sub/standardize.safetensors", "must be a file name");
  refused("..", "must be a file name");
  refused("missing.safetensors", "missing");
  BOOST_TEST_REQUIRE(::mkfifo((dir.path / "fifo").c_str(), 0600) == 0);
  refused("fifo", "not a regular file");
  std::filesystem::create_symlink("/etc/passwd", dir.path / "link");
  refused("link", "not a regular file");
}

BOOST_AUTO_TEST_CASE(a_second_run_on_a_directory_warns_and_cannot_resume_the_first) {
  scratch_dir data("again_data"), out("again_out");
  auto o = one_epoch_run(data.path, out.path);
  o.quiet = false;
  o.stop_after = 0;
  char* buf = nullptr;
  std::size_t len = 0;
  std::FILE* log = ::open_memstream(&buf, &len);
  fnn_train::train(o, log);
  std::fclose(log);
  const std::string text(buf, len);
  std::free(buf);
  BOOST_TEST(text.find("holds an earlier run, which this one replaces") != std::string::npos, text);
  BOOST_TEST(text.find("initial loss") != std::string::npos, text);
  BOOST_TEST(text.find("ln 10 = 2.3026") != std::string::npos, text);
  // Every line fits an 80-column terminal (but for the length of the directory's name).
  std::istringstream lines(text);
  const std::string dir_name = out.path.string();
  for (std::string l; std::getline(lines, l);) {
    if (const auto at = l.find(dir_name); at != std::string::npos) l.replace(at, dir_name.size(), "DIR");
    BOOST_TEST(l.size() <= 80u, l);
  }
}

BOOST_AUTO_TEST_CASE(progress_lines_fit_the_terminal) {
  for (const int cols : {40, 80, 200}) {
    ::setenv("COLUMNS", std::to_string(cols).c_str(), 1);
    char* buf = nullptr;
    std::size_t len = 0;
    std::FILE* f = ::open_memstream(&buf, &len);
    fnn_train::progress bar(f, true);  // as on a terminal; not one, so the width comes from COLUMNS
    bar.start_run(2000);
    bar.start(3, 10, 1000);
    bar.update(1000, 0.123456, 0.98765, 128000.0, 9.5e-4);
    std::fclose(f);
    std::string line(buf, len);
    std::free(buf);
    const auto at = line.rfind("\033[K");
    BOOST_TEST_REQUIRE(at != std::string::npos);
    line = line.substr(at + 3);
    BOOST_TEST(int(line.size()) <= cols - 1, cols << " columns: " << line);
    if (cols >= 80) {
      BOOST_TEST(line.find("lr 9.5e-04") != std::string::npos, line);
      BOOST_TEST(line.find("run ") != std::string::npos, line);
    }
  }
  ::unsetenv("COLUMNS");
}

BOOST_AUTO_TEST_SUITE_END()
