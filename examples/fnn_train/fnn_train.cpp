// fnn-train: trains a typed MLP on Fashion-MNIST. `fnn-train --help` lists the options.
// Exit codes: 0 done, 1 error (bad data, bad checkpoint, bad option value), CLI11's non-zero codes (e.g. 105)
// for a bad command line,
// 3 training diverged (NaN/inf loss or gradient; the last good checkpoint is kept).
#include <CLI/CLI.hpp>
#include <cfloat>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "trainer.hpp"

namespace {

std::string quote(const std::string& s) { return "\"" + (s.size() > 40 ? s.substr(0, 40) + "..." : s) + "\""; }

// Whole-string integer parsing (no wrap-around of "-1" into an unsigned, no silent clamping) with the range in
// the message.
template <class Int>
CLI::Validator integer_in(Int lo, Int hi) {
  const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        Int v{};
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || v < lo || v > hi)
          return "must be " + range + ", got " + quote(s);
        return {};
      },
      range);
}

// A finite number in [lo, hi] that is still finite as a float (1e99 would silently become inf).
CLI::Validator float_in(double lo, double hi) {
  char range[96];
  std::snprintf(range, sizeof range, "a number in [%g, %g]", lo, hi);
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || !(v >= lo && v <= hi))
          return "must be " + std::string(range) + ", got " + quote(s);
        return {};
      },
      range);
}

}  // namespace

int main(int argc, char** argv) {
  fnn_train::options o;
  std::string data = o.data.string(), out = o.out.string();
  CLI::App app{
      "fnn-train: trains a 784-256-256-10 MLP (dense + batch_norm + gelu blocks) on Fashion-MNIST.\n"
      "After every epoch it writes <out>/state.safetensors (everything --resume needs, checksummed, replaced\n"
      "atomically), <out>/model.safetensors (PyTorch nn.Sequential state_dict names) and <out>/metrics.csv\n"
      "(plot it with: /usr/bin/python3 scripts/plot_metrics.py <out>/metrics.csv)."};
  app.add_option("--epochs", o.epochs, "number of epochs")->capture_default_str()->check(integer_in(1, 1000000));
  app.add_option("--batch", o.batch, "mini-batch size (>= 2: batch_norm)")->capture_default_str()->check(integer_in(2, 1 << 20));
  app.add_option("--lr", o.lr, "peak learning rate")->capture_default_str()->check(float_in(0, FLT_MAX));
  app.add_option("--optimizer", o.optimizer, "adamw (weight decay 1e-2), adam, sgd (momentum 0.9) or rmsprop")
      ->capture_default_str()
      ->check(CLI::IsMember({"adamw", "adam", "sgd", "rmsprop"}));
  app.add_option("--schedule", o.schedule,
                 "learning-rate schedule, stepped every batch: cosine (to 0 over all steps), constant, or step "
                 "(x0.1 after each third of the steps)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "constant", "step"}));
  app.add_option("--seed", o.seed, "seed of the initial weights and of every epoch's shuffle/augmentation")
      ->capture_default_str()
      ->check(integer_in<std::uint64_t>(0, UINT64_MAX));
  app.add_option("--threads", o.threads, "threads for fnn's kernels (0: OMP_NUM_THREADS or all cores; 1 is fastest at batch 128 on 2 cores)")
      ->capture_default_str()
      ->check(integer_in(0, 1024));
  app.add_option("--data", data, "directory with the MNIST-format IDX files (raw or .gz)")->capture_default_str();
  app.add_option("--out", out, "output directory (checkpoints, metrics.csv)")->capture_default_str();
  app.add_flag("--standardize,!--no-standardize", o.standardize,
               "standardize each pixel with mean/std of the TRAIN set (applied to test too; saved to "
               "<out>/standardize.safetensors). Off by default: the batch_norm after the first layer makes it "
               "unnecessary");
  app.add_flag("--augment", o.augment, "random shifts of +-2 pixels and horizontal flips of training images");
  app.add_option("--noise", o.noise, "std of Gaussian noise added to training pixels (in [0, 1] pixel units)")
      ->capture_default_str()
      ->check(float_in(0, 1e3));
  app.add_option("--subset", o.subset, "train on the first N training samples only (0: all)")
      ->capture_default_str()
      ->check(integer_in(0L, long(1) << 40));
  app.add_flag("--resume", o.resume,
               "continue the run in --out from its last checkpoint (same options give the same result as an "
               "uninterrupted run)");
  app.add_option("--stop-after", o.stop_after, "stop after this epoch as if interrupted (to try --resume)")
      ->check(integer_in(0, 1000000));
  CLI11_PARSE(app, argc, argv);
  o.data = data;
  o.out = out;
  try {
    fnn_train::train(o);
    return 0;
  } catch (const fnn_train::diverged& e) {
    std::fprintf(stderr, "fnn-train: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn-train: %s\n", fnn_train::message_of(e).c_str());
    return 1;
  }
}
