// fnn-train: trains a typed MLP on Fashion-MNIST. `fnn-train --help` lists the options.
// Exit codes: 0 done, 1 error (bad data, bad checkpoint, bad option value), CLI11's non-zero codes (e.g. 105)
// for a bad command line,
// 3 training diverged (NaN/inf loss or gradient; the last good checkpoint is kept).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <cfloat>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
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
      "Workflow: --val 0.1 holds out a validation split, --early-stop 5 stops on it, best.safetensors keeps the\n"
      "best epoch, --average 3 averages the last epochs, --tta scores with test-time augmentation.\n"
      "After every epoch it writes <out>/state.safetensors (everything --resume needs, checksummed, replaced\n"
      "atomically), <out>/model.safetensors (PyTorch nn.Sequential state_dict names) and <out>/metrics.csv\n"
      "(plot it with: /usr/bin/python3 scripts/plot_metrics.py <out>/metrics.csv)."};
  app.add_option("--epochs", o.epochs, "number of epochs")->capture_default_str()->check(integer_in(1, 1000000));
  app.add_option("--batch", o.batch, "mini-batch size (>= 2: batch_norm)")->capture_default_str()->check(integer_in(2, 1 << 20));
  app.add_option("--lr", o.lr, "peak learning rate")->capture_default_str()->check(float_in(0, FLT_MAX));
  app.add_option("--optimizer", o.optimizer, "adamw, adam, sgd, rmsprop or adagrad (options below: PyTorch's defaults)")
      ->capture_default_str()
      ->check(CLI::IsMember({"adamw", "adam", "sgd", "rmsprop", "adagrad"}));
  const auto nonneg = float_in(0, FLT_MAX);
  app.add_option("--weight-decay", o.weight_decay, "weight decay (default: AdamW 1e-2, the others 0)")->check(nonneg);
  app.add_option("--momentum", o.momentum, "momentum (sgd, rmsprop)")->capture_default_str()->check(nonneg);
  app.add_option("--dampening", o.dampening, "dampening (sgd)")->capture_default_str()->check(float_in(0, 1));
  app.add_flag("--nesterov", o.nesterov, "Nesterov momentum (sgd)");
  app.add_option("--beta1", o.beta1, "Adam's beta1")->capture_default_str()->check(float_in(0, 0.999999));
  app.add_option("--beta2", o.beta2, "Adam's beta2")->capture_default_str()->check(float_in(0, 0.999999));
  app.add_option("--eps", o.eps, "eps of the denominator (default: Adagrad 1e-10, the others 1e-8)")->check(nonneg);
  app.add_flag("--amsgrad", o.amsgrad, "AMSGrad variant (adam, adamw)");
  app.add_option("--alpha", o.alpha, "smoothing constant (rmsprop)")->capture_default_str()->check(float_in(0, 0.999999));
  app.add_flag("--centered", o.centered, "centered RMSprop");
  app.add_option("--lr-decay", o.lr_decay, "learning-rate decay (adagrad)")->capture_default_str()->check(nonneg);
  app.add_option("--initial-accumulator", o.initial_accumulator, "initial accumulator value (adagrad)")
      ->capture_default_str()
      ->check(nonneg);
  app.add_option("--l1", o.l1, "L1 term l1*sign(w) added to the gradient by the optimizer")->capture_default_str()->check(nonneg);
  app.add_option("--max-grad-norm", o.max_grad_norm, "clip the gradients' global L2 norm to this (0: off)")
      ->capture_default_str()
      ->check(nonneg);
  app.add_option("--clip-value", o.clip_value, "clamp every gradient element to [-v, v] (0: off)")
      ->capture_default_str()
      ->check(nonneg);
  app.add_option("--decay", o.decay, "parameters weight decay and --l1 apply to: all (PyTorch) or weights_only")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "weights_only"}));
  app.add_option("--penalty-l1", o.penalty_l1, "loss term lambda*sum|w| over the weights (fnn::penalty::l1)")
      ->capture_default_str()
      ->check(nonneg);
  app.add_option("--penalty-l2", o.penalty_l2, "loss term lambda/2*sum w^2 over the weights (fnn::penalty::l2)")
      ->capture_default_str()
      ->check(nonneg);
  app.add_option("--schedule", o.schedule,
                 "learning-rate schedule, stepped every batch: cosine (to --eta-min over the run), constant, step "
                 "(x --gamma every --step-epochs, default a third of the run), multistep (x --gamma at each of "
                 "--milestones), exponential (x --gamma per epoch), inverse_time (lr/(1+k*epochs)), warm_restarts "
                 "(SGDR: --t0 epochs, x --t-mult), plateau (ReduceLROnPlateau on the --val --monitor metric, per epoch: x "
                 "--plateau-factor after --plateau-patience epochs without improvement)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cosine", "constant", "step", "multistep", "exponential", "inverse_time", "warm_restarts", "plateau"}));
  app.add_option("--gamma", o.gamma, "decay factor of step/multistep/exponential")->capture_default_str()->check(float_in(0, 1e6));
  app.add_option("--step-epochs", o.step_epochs, "epochs between decays of step (0: a third of the run)")
      ->capture_default_str()
      ->check(float_in(0, 1e6));
  app.add_option("--milestones", o.milestones, "epochs of the multistep decays, e.g. 5,8");
  app.add_option("--eta-min", o.eta_min, "lowest learning rate of cosine/warm_restarts")->capture_default_str()->check(float_in(0, 1e6));
  app.add_option("--k", o.k, "inverse_time's k (per epoch)")->capture_default_str()->check(float_in(0, 1e6));
  app.add_option("--t0", o.t0, "warm_restarts: epochs of the first cycle")->capture_default_str()->check(integer_in(1, 1000000));
  app.add_option("--t-mult", o.t_mult, "warm_restarts: cycle length factor")->capture_default_str()->check(integer_in(1, 1000));
  app.add_option("--plateau-patience", o.plateau_patience, "plateau: epochs without improvement before a reduction")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--plateau-factor", o.plateau_factor, "plateau: the rate is multiplied by this")
      ->capture_default_str()
      ->check(float_in(0, 0.999999));
  app.add_option("--plateau-threshold", o.plateau_threshold, "plateau: relative improvement that counts")
      ->capture_default_str()
      ->check(float_in(0, 1e6));
  app.add_option("--plateau-cooldown", o.plateau_cooldown, "plateau: epochs to wait after a reduction")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--plateau-min-lr", o.plateau_min_lr, "plateau: the rate never goes below this")
      ->capture_default_str()
      ->check(float_in(0, 1e6));
  app.add_option("--warmup", o.warmup, "linear warm-up steps before the schedule (0: none)")
      ->capture_default_str()
      ->check(integer_in(0, 1 << 30));
  app.add_option("--warmup-factor", o.warmup_factor, "warm-up starts at this fraction of --lr (LinearLR's start_factor)")
      ->capture_default_str()
      ->check(float_in(1e-9, 1));
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
               "model metadata). Off by default: the batch_norm after the first layer makes it "
               "unnecessary");
  app.add_flag("--augment", o.augment, "random shifts of +-2 pixels and horizontal flips of training images");
  app.add_option("--noise", o.noise, "std of Gaussian noise added to training pixels (in [0, 1] pixel units)")
      ->capture_default_str()
      ->check(float_in(0, 1e3));
  app.add_option("--subset", o.subset, "train on the first N training samples only (0: all)")
      ->capture_default_str()
      ->check(integer_in(0L, long(1) << 40));
  app.add_option("--val", o.val,
                 "hold out a validation split of the training set: a fraction (0.1) or a count (5000). Per-epoch "
                 "metrics are then on it, best.safetensors keeps the best epoch, and the test set is scored once, "
                 "at the end");
  app.add_flag("--stratify,!--no-stratify", o.stratify, "the validation split keeps each class's share")
      ->capture_default_str();
  app.add_option("--early-stop", o.early_stop, "stop after this many epochs without improvement on --val (0: off)")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--min-delta", o.min_delta, "an improvement must exceed this")->capture_default_str()->check(float_in(0, 1e6));
  app.add_option("--monitor", o.monitor, "validation metric of --early-stop and best.safetensors")
      ->capture_default_str()
      ->check(CLI::IsMember({"loss", "accuracy"}));
  app.add_option("--average", o.average,
                 "also write averaged.safetensors: the mean weights of the last K epochs, batch-norm statistics "
                 "recomputed on the training set (0: off)")
      ->capture_default_str()
      ->check(integer_in(0, 1000000));
  app.add_option("--ema", o.ema,
                 "keep an exponential moving average of the weights with this decay (e.g. 0.999) after every step; "
                 "written to <out>/ema.safetensors and scored at the end (0: off)")
      ->capture_default_str()
      ->check(float_in(0, 0.999999));
  app.add_flag("--ema-warmup", o.ema_warmup, "EMA decay min(--ema, (1 + n) / (10 + n)) at update n");
  std::string init_from;
  app.add_option("--init-from", init_from,
                 "transfer learning: start from this model checkpoint (e.g. another run's model.safetensors) "
                 "instead of the seeded initialization");
  app.add_option("--init-layers", o.init_layers, "load only the first N layers of --init-from (0: all)")
      ->capture_default_str()
      ->check(integer_in(0, 1 << 20));
  app.add_option("--freeze", o.freeze,
                 "freeze layers [0, N) (layers count from 0 after the input: 3 is the first dense+batch_norm+gelu "
                 "block): no gradient, no update, batch-norm statistics fixed")
      ->capture_default_str()
      ->check(integer_in(0, 1 << 20));
  app.add_flag("--tta", o.tta, "score the final model with test-time augmentation (mean over shifted/flipped copies)");
  app.add_flag("--resume", o.resume,
               "continue the run in --out from its last checkpoint (same options give the same result as an "
               "uninterrupted run)");
  app.add_option("--stop-after", o.stop_after, "stop after this epoch as if interrupted (to try --resume)")
      ->check(integer_in(0, 1000000));
  app.add_flag("--distributed", o.distributed,
               "data parallel over the ranks of an MPI job: mpirun -np N fnn-train --distributed ... (--batch is "
               "per rank, the global batch N x --batch; rank 0 writes and prints; --resume needs the same N)");
  app.add_flag("--sync-batch-norm", o.sync_batch_norm,
               "with --distributed: batch norm normalizes over the global batch (SyncBatchNorm), not each rank's");
  int search = 0;
  app.add_option("--search", search,
                 "random search: N trials of this run with log-uniform --lr in [1e-4, 1e-2] and --weight-decay in "
                 "[1e-5, 1e-1], judged on --val; writes <out>/search.csv and prints the best as a command line")
      ->check(integer_in(0, 100000));
  CLI11_PARSE(app, argc, argv);
  o.data = data;
  o.out = out;
  if (!init_from.empty()) o.init_from = init_from;
  // MPI starts only for --distributed: a one-process run never touches it.
#ifdef FNN_TRAIN_MPI
  std::optional<fnn::distributed::environment> mpi;
#endif
  std::optional<fnn_train::world> ranks;
  try {
#ifdef FNN_TRAIN_MPI
    if (o.distributed) mpi.emplace(argc, argv);
#endif
    ranks.emplace(o.distributed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn-train: %s\n", fnn_train::message_of(e).c_str());
    return 1;
  }
  try {
    // Hyper-parameters are data: --resume continues with the options the training state records, so
    // `fnn-train --out DIR --resume` needs nothing else; an option given on this command line wins (and a
    // difference is reported as "not the same run").
    // (Rank 0's state, on every rank.)
    const auto state_file =
        o.resume ? ranks->read_on_root(o.out / "state.safetensors") : std::optional<fnn::io::safetensors_file>{};
    if (state_file) {
      const auto& state = *state_file;
      fnn_train::for_each_setting(o, [&](const char* name, auto& v) {
        std::string flag = std::string("--") + name;
        std::replace(flag.begin(), flag.end(), '_', '-');
        const CLI::Option* given = app.get_option_no_throw(flag);
        const auto it = state.metadata.find(std::string("fnn.train.") + name);
        if (fnn_train::detail::runtime_only(name) || (given != nullptr && given->count() > 0) || it == state.metadata.end())
          return;
        if (!fnn::train::codec<std::decay_t<decltype(v)>>::from_text(it->second, v))
          throw fnn::io_error((o.out / "state.safetensors").string() + ": __metadata__ \"fnn.train." + name +
                              "\" has a bad value \"" + it->second.substr(0, 40) + "\"");
      });
    }
    if (search > 0) {
      fnn_train::random_search(o, search);
      return 0;
    }
    fnn_train::train(o, stdout, &*ranks);
    return 0;
  } catch (const fnn_train::diverged& e) {
    // Every rank sees the same global loss and gradient norm: they all stop here, and exit normally.
    if (ranks->root()) std::fprintf(stderr, "fnn-train: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    const std::string who = ranks->distributed() ? " (rank " + std::to_string(ranks->rank()) + ")" : "";
    std::fprintf(stderr, "fnn-train%s: %s\n", who.c_str(), fnn_train::message_of(e).c_str());
#ifdef FNN_TRAIN_MPI
    // The other ranks may wait in a collective for this one: end the whole job now, not at a timeout.
    if (ranks->distributed() && ranks->size() > 1) {
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
#endif
    return 1;
  }
}
