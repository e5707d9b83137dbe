// fnn-train: trains a typed MLP on Fashion-MNIST. `fnn-train --help` lists the options.
// Exit codes: 0 done, 1 error (bad data, bad checkpoint, bad option value), CLI11's non-zero codes (e.g. 105)
// for a bad command line,
// 3 training diverged (NaN/inf loss or gradient; the last good checkpoint is kept).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "trainer.hpp"

int main(int argc, char** argv) {
  fnn_train::options o;
  std::string data = o.data.string(), out = o.out.string();
  CLI::App app{
      "fnn-train: trains a 784-256-256-10 MLP (dense + batch_norm + gelu blocks) on Fashion-MNIST.\n"
      "Writes <out>/model.safetensors (PyTorch nn.Sequential state_dict names) and <out>/optimizer.safetensors\n"
      "after every epoch, and appends one row per epoch to <out>/metrics.csv\n"
      "(plot it with: /usr/bin/python3 scripts/plot_metrics.py <out>/metrics.csv)."};
  app.add_option("--epochs", o.epochs, "number of epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", o.batch, "mini-batch size (>= 2: batch_norm)")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  app.add_option("--lr", o.lr, "peak learning rate")->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--optimizer", o.optimizer, "adamw (weight decay 1e-2), adam, sgd (momentum 0.9) or rmsprop")
      ->capture_default_str()
      ->check(CLI::IsMember({"adamw", "adam", "sgd", "rmsprop"}));
  app.add_option("--schedule", o.schedule,
                 "learning-rate schedule, stepped every batch: cosine (to 0 over all steps), constant, or step "
                 "(x0.1 after each third of the steps)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "constant", "step"}));
  app.add_option("--seed", o.seed, "seed of the initial weights and of every epoch's shuffle/augmentation")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads for fnn's kernels (0: OMP_NUM_THREADS or all cores; 1 is fastest at batch 128 on 2 cores)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--data", data, "directory with the MNIST-format IDX files (raw or .gz)")->capture_default_str();
  app.add_option("--out", out, "output directory (checkpoints, metrics.csv)")->capture_default_str();
  app.add_flag("--standardize,!--no-standardize", o.standardize,
               "standardize each pixel with mean/std of the TRAIN set (applied to test too; saved to "
               "<out>/standardize.safetensors). Off by default: the batch_norm after the first layer makes it "
               "unnecessary");
  app.add_flag("--augment", o.augment, "random shifts of +-2 pixels and horizontal flips of training images");
  app.add_option("--noise", o.noise, "std of Gaussian noise added to training pixels (in [0, 1] pixel units)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--subset", o.subset, "train on the first N training samples only (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--resume", o.resume,
               "continue the run in --out from its last checkpoint (same options give the same result as an "
               "uninterrupted run)");
  app.add_option("--stop-after", o.stop_after, "stop after this epoch as if interrupted (to try --resume)")
      ->check(CLI::NonNegativeNumber);
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
