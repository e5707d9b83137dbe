#pragma once
// The main job behind fnn-train and fnn-eval: a typed MLP trained on Fashion-MNIST (or any MNIST-format
// directory), with progress, metrics, checkpoints and exact resume. Kept in a header so the unit tests
// (tests/unit/train) run the very same code on a small subset.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/io/mnist.hpp"
#include "fnn/network/describe.hpp"
#include "fnn/data/augment.hpp"
#include "fnn/data/batches.hpp"
#include "fnn/data/split.hpp"
#include "fnn/data/standardize.hpp"
#include "fnn/optim/optim.hpp"
#include "fnn/train/average.hpp"
#include "fnn/train/early_stopping.hpp"
#include "fnn/train/ensemble.hpp"
#include "fnn/train/reflect.hpp"
#include "run_dir.hpp"
#include "world.hpp"
#if __has_include("fnn/kernels/threads.hpp")
#include "fnn/kernels/threads.hpp"
#define FNN_TRAIN_HAS_THREADS 1
#endif

namespace fnn_train {

// 784 -> 256 -> 256 -> 10, each hidden block dense + batch_norm + gelu (PyTorch: nn.Sequential of
// Linear, BatchNorm1d, GELU, Linear, BatchNorm1d, GELU, Linear).
using net_t = fnn::sequential<fnn::input<784>,                              //
                              fnn::dense<256>, fnn::batch_norm, fnn::gelu,  //
                              fnn::dense<256>, fnn::batch_norm, fnn::gelu,  //
                              fnn::dense<10>>;
inline constexpr int classes = 10;
inline constexpr std::array<const char*, classes> class_names = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
inline constexpr const char* architecture = "784-256-256-10 (dense, batch_norm, gelu) x2, dense";

// The optimizer's hyper-parameters, PyTorch's defaults. A negative weight_decay / eps means the optimizer's own
// default (weight decay 1e-2 for AdamW, 0 for the others; eps 1e-10 for Adagrad, 1e-8 for the others).
struct optimizer_settings {
  float weight_decay = -1;
  float momentum = 0;   // sgd, rmsprop
  float dampening = 0;  // sgd
  bool nesterov = false;
  float beta1 = 0.9f, beta2 = 0.999f;  // adam, adamw
  float eps = -1;
  bool amsgrad = false;
  float alpha = 0.99f;  // rmsprop
  bool centered = false;
  float lr_decay = 0;             // adagrad
  float initial_accumulator = 0;  // adagrad
  float l1 = 0;                   // optimizer-side L1: l1 * sign(w) added to the gradient
  float max_grad_norm = 0;        // > 0: clip by the global L2 norm
  float clip_value = 0;           // > 0: clamp each gradient element
  std::string decay = "all";      // which parameters weight_decay/l1 apply to: all (PyTorch) or weights_only
  float penalty_l1 = 0, penalty_l2 = 0;  // loss terms lambda*|w|_1, lambda/2*|w|^2 (fnn::penalty)
};

struct schedule_settings {
  // Learning-rate schedule, stepped every batch: cosine (to eta_min over all steps), constant, step (x gamma
  // every step_epochs, default a third of the run), multistep (x gamma at each of `milestones` epochs),
  // exponential (x gamma per epoch), inverse_time (lr / (1 + k t), t in epochs), warm_restarts (SGDR, t0
  // epochs, x t_mult). warmup > 0 ramps linearly from warmup_factor * lr over that many steps first.
  std::string schedule = "cosine";
  double gamma = 0.1;
  double step_epochs = 0;
  std::string milestones;
  double eta_min = 0;
  double k = 1;
  int t0 = 1, t_mult = 1;
  int warmup = 0;
  double warmup_factor = 1.0 / 3.0;  // torch.optim.lr_scheduler.LinearLR's start_factor
  // plateau: torch.optim.lr_scheduler.ReduceLROnPlateau on the validation metric (--monitor), stepped once per
  // epoch, with its defaults; its state is in the training state, so --resume continues it exactly.
  int plateau_patience = 10;
  double plateau_factor = 0.1;
  double plateau_threshold = 1e-4;  // relative (threshold_mode='rel')
  int plateau_cooldown = 0;
  double plateau_min_lr = 0;
};

// Three structs because Boost.Hana adapts at most 40 fields per struct; `options` is still one flat aggregate.
struct options : optimizer_settings, schedule_settings {
  int epochs = 10;
  int batch = 128;
  float lr = 1e-3f;
  std::string optimizer = "adamw";  // adamw, adam, sgd, rmsprop, adagrad
  std::uint64_t seed = 42;
  // 1 by default: at batch 128 the products are too small for a second thread to pay for its
  // synchronization (measured on the 2-core machine: 7.6 s with 1 thread, 8.4 s with 2, same accuracy).
  int threads = 1;  // 0: fnn's default (OMP_NUM_THREADS or all cores)
  std::filesystem::path data = "/usr/share/datasets/fashion-mnist";
  std::filesystem::path out = "runs/fashion-mnist";
  bool standardize = false;
  bool augment = false;
  float noise = 0.0f;
  long subset = 0;       // first N training samples (0: all)
  long test_subset = 0;  // first N test samples (0: all; for tests)
  // Validation split held out of the training set ("0.1" or "5000"; empty: none, and the per-epoch metrics
  // are on the test set as before). With it the test set is scored once, at the end.
  std::string val;
  bool stratify = true;  // the split keeps the class shares
  int early_stop = 0;    // patience in epochs (0: off; needs val)
  double min_delta = 0;  // an improvement of the monitored metric must exceed this
  std::string monitor = "loss";  // val loss or accuracy, for early stopping and best.safetensors
  int average = 0;       // average the last K epochs' weights into averaged.safetensors (0: off)
  // Exponential moving average of the weights (fnn::optim::ema) after every step, exported as ema.safetensors
  // and scored at the end (0: off); ema_warmup: decay min(ema, (1 + n) / (10 + n)) at update n.
  float ema = 0;
  bool ema_warmup = false;
  // Transfer learning: start from the first `init_layers` layers of a model checkpoint (0: all of it) instead
  // of the seeded initialization, and freeze layers [0, freeze) (no gradient, batch-norm statistics fixed).
  std::filesystem::path init_from;
  int init_layers = 0;
  int freeze = 0;
  bool tta = false;      // the final test score averages the predictions over shifted/flipped copies
  bool resume = false;
  int stop_after = 0;  // stop after this epoch as if interrupted (0: never; to test --resume)
  bool quiet = false;  // no output at all (tests)
  // Data parallel over the ranks of an MPI job (mpirun -np N fnn-train --distributed): `batch` is per rank,
  // the global batch is batch x N. The state records N; --resume needs the same N.
  bool distributed = false;
  bool sync_batch_norm = false;  // with distributed: batch norm over the global batch (SyncBatchNorm)
};

}  // namespace fnn_train

// The trainer's options are data too: written into every training state ("fnn.train.<field>") and compared on
// resume by the same generic code as the optimizer's (fnn/train/reflect.hpp).
BOOST_HANA_ADAPT_STRUCT(fnn_train::optimizer_settings, weight_decay, momentum, dampening, nesterov, beta1, beta2, eps,
                        amsgrad, alpha, centered, lr_decay, initial_accumulator, l1, max_grad_norm, clip_value, decay,
                        penalty_l1, penalty_l2);
BOOST_HANA_ADAPT_STRUCT(fnn_train::schedule_settings, schedule, gamma, step_epochs, milestones, eta_min, k, t0, t_mult,
                        warmup, warmup_factor, plateau_patience, plateau_factor, plateau_threshold, plateau_cooldown,
                        plateau_min_lr);
BOOST_HANA_ADAPT_STRUCT(fnn_train::options, epochs, batch, lr, optimizer, seed, threads, data, out, standardize, augment,
                        noise, subset, test_subset, val, stratify, early_stop, min_delta, monitor, average, tta, resume,
                        stop_after, quiet, distributed, sync_batch_norm, ema, ema_warmup, init_from, init_layers,
                        freeze);

namespace fnn_train {
// f(name, field&) over every reflected field of the options, the two settings structs' included.
template <class O, class F>
void for_each_setting(O& o, F&& f) {
  using opt_t = std::conditional_t<std::is_const_v<O>, const optimizer_settings, optimizer_settings>;
  using sch_t = std::conditional_t<std::is_const_v<O>, const schedule_settings, schedule_settings>;
  fnn::train::for_each_option(static_cast<opt_t&>(o), f);
  fnn::train::for_each_option(static_cast<sch_t&>(o), f);
  fnn::train::for_each_option(o, f);
}
inline void write_settings(fnn::io::metadata& m, const options& o) {
  for_each_setting(o, [&](const char* name, const auto& v) {
    m[std::string("fnn.train.") + name] = fnn::train::codec<std::decay_t<decltype(v)>>::to_text(v);
  });
}
}  // namespace fnn_train

namespace fnn_train {

// Training diverged (NaN/inf loss): the last good checkpoint is kept.
class diverged final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What users read: fnn's messages start with "fnn: ", the programs prefix their own name instead.
inline std::string message_of(const std::exception& e) {
  std::string s = e.what();
  return s.rfind("fnn: ", 0) == 0 ? s.substr(5) : s;
}

// The images stay bytes (47 MB for the training split instead of 188 MB of floats, which cost more to
// fault in and fill than an epoch of training): a mini-batch converts its rows to floats as it gathers them.
struct dataset {
  fnn::buffer<std::byte> pixels;  // [size(), 784] in 0..255, row-major
  std::vector<std::int32_t> y;
  fnn::index_t size() const { return fnn::index_t(y.size()); }
  const std::uint8_t* image(fnn::index_t i) const {
    return reinterpret_cast<const std::uint8_t*>(pixels.data()) + std::size_t(i) * 784;
  }
  // Images [first, first + n) as floats in [0, 1] (pixel / 255, as fnn::io::load_mnist computes them).
  void to_float(fnn::index_t first, fnn::index_t n, float* dst) const {
    fnn::io::pixels_to_float(image(first), std::size_t(n) * 784, dst);
  }
};

inline dataset load_split(const std::filesystem::path& dir, fnn::io::split which, long limit) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw fnn::io_error(dir.string() +
                        ": data directory not found. Install Fashion-MNIST with `sudo apt-get install "
                        "dataset-fashion-mnist` (it goes to /usr/share/datasets/fashion-mnist), or pass --data DIR "
                        "with the four MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...)");
  auto d = fnn::io::load_mnist_bytes(dir, which);
  if (d.rows * d.cols != 784)
    throw fnn::shape_error(dir.string() + ": images are " + std::to_string(d.rows) + "x" + std::to_string(d.cols) +
                           ", the network expects 28x28");
  dataset out;
  const fnn::index_t n = limit > 0 ? std::min<fnn::index_t>(limit, d.size()) : d.size();
  if (n == d.size())
    out.pixels = std::move(d.data);
  else
    out.pixels.assign(d.data.begin(), d.data.begin() + std::ptrdiff_t(n) * 784);
  out.y.assign(d.labels.begin(), d.labels.begin() + n);
  return out;
}

// The rows `idx` of a data set (a validation split's two parts).
inline dataset subset_of(const dataset& d, const std::vector<std::int32_t>& idx) {
  dataset out;
  out.pixels.resize(idx.size() * 784);
  out.y.reserve(idx.size());
  for (std::size_t i = 0; i < idx.size(); ++i) {
    std::memcpy(out.pixels.data() + i * 784, d.pixels.data() + std::size_t(idx[i]) * 784, 784);
    out.y.push_back(d.y[std::size_t(idx[i])]);
  }
  return out;
}

// Per-feature standardization (fnn::data::standardizer) with statistics of the training set only. The standard
// deviation is floored at 0.05 (in pixel units of [0, 1]): Fashion-MNIST's border pixels are almost always 0,
// and dividing by their tiny spread would turn a faint test-set pixel into a huge input.
using standardizer = fnn::data::standardizer;
inline standardizer fit_standardizer(const dataset& x) {
  return standardizer::fit(
      x.size(), 784, [&](fnn::index_t i, float* row) { x.to_float(i, 1, row); }, {.min_std = 0.05});
}
// Checkpoints of earlier fnn-train versions kept the statistics in a side file (see standardize_path_of).
inline standardizer load_standardizer_file(const std::filesystem::path& path) {
  const auto f = fnn::io::read_safetensors(path);
  return {f.values<float>("mean", {784}), f.values<float>("std", {784})};
}

// The standardization file a checkpoint's metadata names: a plain file name, resolved in the checkpoint's own
// directory only, and opened only if it is a regular file (a crafted checkpoint must not make fnn-eval read
// /etc/..., ../elsewhere, or block forever on a FIFO).
inline std::filesystem::path standardize_path_of(const std::filesystem::path& checkpoint, const std::string& name) {
  const std::filesystem::path p(name);
  if (name.empty() || p.has_parent_path() || name.find('/') != std::string::npos || name == "." || name == "..")
    throw fnn::io_error(checkpoint.string() + ": __metadata__ \"standardize\" must be a file name in the checkpoint's "
                        "directory, got \"" + name.substr(0, 80) + "\"");
  const auto path = checkpoint.parent_path() / p;
  std::error_code ec;
  const auto st = std::filesystem::symlink_status(path, ec);
  if (ec || st.type() != std::filesystem::file_type::regular)
    throw fnn::io_error(path.string() + ": named by " + checkpoint.filename().string() +
                        " as its standardization statistics, but it is " +
                        (ec || st.type() == std::filesystem::file_type::not_found ? std::string("missing")
                                                                                  : std::string("not a regular file")));
  return path;
}

// The standardization a checkpoint was trained with: in its metadata, or (older checkpoints) in a side file
// next to it; none if it names neither.
inline std::optional<standardizer> standardization_of(const fnn::io::safetensors_file& f) {
  const auto& m = f.metadata;
  if (auto s = standardizer::read_metadata(f.path, m, 784)) return s;
  const auto it = m.find("standardize");
  if (it == m.end() || it->second.empty()) return std::nullopt;
  return load_standardizer_file(standardize_path_of(f.path, it->second));
}

struct evaluation {
  double loss = 0;
  double accuracy = 0;
  std::array<std::array<long, classes>, classes> confusion{};  // [true][predicted]
};

inline int argmax(const float* z) { return int(std::max_element(z, z + classes) - z); }

// Scores a model given as `logits_of(x) -> const_matrix_view<float>` (valid until its next call) on a data set,
// in chunks of 1000 images, standardized with `stdz` when given (a model trained with --standardize).
template <class LogitsOf>
evaluation evaluate_with(LogitsOf&& logits_of, const dataset& d, const standardizer* stdz = nullptr) {
  evaluation e;
  const fnn::loss::softmax_cross_entropy ce;
  const fnn::index_t chunk = 1000;
  long correct = 0;
  fnn::matrix<float> x;
  for (fnn::index_t b = 0; b < d.size(); b += chunk) {
    const fnn::index_t n = std::min(chunk, d.size() - b);
    x.resize(n, 784);
    d.to_float(b, n, x.data());
    if (stdz != nullptr) stdz->apply(x.view());
    const fnn::const_matrix_view<float> logits = logits_of(fnn::const_matrix_view<float>(x.view()));
    const std::span<const std::int32_t> labels(d.y.data() + b, std::size_t(n));
    e.loss += double(ce(logits, labels, fnn::matrix_view<float>{})) * double(n);
    for (fnn::index_t i = 0; i < n; ++i) {
      const int p = argmax(logits.row(i));
      const int t = labels[std::size_t(i)];
      e.confusion[std::size_t(t)][std::size_t(p)]++;
      correct += p == t;
    }
  }
  e.loss /= double(d.size());
  e.accuracy = double(correct) / double(d.size());
  return e;
}

inline evaluation evaluate(net_t& net, const dataset& d, const standardizer* stdz = nullptr) {
  return evaluate_with([&](fnn::const_matrix_view<float> x) { return net.infer_view(x); }, d, stdz);
}

inline std::string confusion_report(const evaluation& e) {
  std::ostringstream s;
  char line[256];
  s << "per-class test accuracy:\n";
  for (int c = 0; c < classes; ++c) {
    long total = 0;
    for (long v : e.confusion[std::size_t(c)]) total += v;
    std::snprintf(line, sizeof line, "  %d %-12s %.4f  (%ld samples)\n", c, class_names[std::size_t(c)],
                  total ? double(e.confusion[std::size_t(c)][std::size_t(c)]) / double(total) : 0.0, total);
    s << line;
  }
  s << "confusion matrix (rows: true class, columns: predicted class):\n              ";
  for (int c = 0; c < classes; ++c) {
    std::snprintf(line, sizeof line, "%6d", c);
    s << line;
  }
  s << "\n";
  for (int t = 0; t < classes; ++t) {
    std::snprintf(line, sizeof line, "  %d %-11s", t, class_names[std::size_t(t)]);
    s << line;
    for (int p = 0; p < classes; ++p) {
      std::snprintf(line, sizeof line, "%6ld", e.confusion[std::size_t(t)][std::size_t(p)]);
      s << line;
    }
    s << "\n";
  }
  return s.str();
}

// Shuffling, augmentation and noise are fnn::data's: one engine per epoch, derived from (seed, epoch), so an
// epoch's shuffle, shifts, flips and noise do not depend on what ran before (exact --resume).
using fnn::data::epoch_engine;
using fnn::data::shuffled_indices;
// A last batch of one sample is dropped (batch_norm needs two).
inline fnn::index_t steps_per_epoch(fnn::index_t n, fnn::index_t batch) { return fnn::data::steps_per_epoch(n, batch, 2); }

// "3,6,8" -> {3, 6, 8}: ascending whole epochs.
inline std::vector<std::int64_t> parse_milestones(const std::string& text) {
  std::vector<std::int64_t> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = std::min(text.find(',', at), text.size());
    const std::string item = text.substr(at, end - at);
    char* stop = nullptr;
    const long long v = std::strtoll(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || v < 1 || (!out.empty() && v <= out.back()))
      throw fnn::value_error("--milestones must be ascending whole epochs >= 1 separated by commas, got \"" +
                             text.substr(0, 40) + "\"");
    out.push_back(v);
    at = end + 1;
  }
  if (out.empty()) throw fnn::value_error("--schedule multistep needs --milestones (epochs, e.g. 5,8)");
  return out;
}

// The learning rate at each optimizer step, from fnn::optim's schedules (epoch-valued options become steps).
inline std::function<double(std::int64_t)> make_schedule(const options& o, std::int64_t steps_per_epoch,
                                                         std::int64_t total_steps) {
  if (o.warmup < 0 || o.warmup >= std::max<std::int64_t>(total_steps, 1))
    throw fnn::value_error("--warmup must be in [0, " + std::to_string(total_steps) + ") steps, got " +
                           std::to_string(o.warmup));
  const std::int64_t main_steps = std::max<std::int64_t>(total_steps - o.warmup, 1);
  const double spe = double(steps_per_epoch);
  const auto wrap = [&](auto inner) -> std::function<double(std::int64_t)> {
    if (o.warmup == 0) return [inner](std::int64_t t) { return inner.lr_at(t); };
    fnn::optim::linear_warmup w(o.warmup, o.warmup_factor, inner);
    return [w](std::int64_t t) { return w.lr_at(t); };
  };
  if (o.schedule == "cosine") return wrap(fnn::optim::cosine_annealing_lr(o.lr, main_steps, o.eta_min));
  if (o.schedule == "step") {
    const auto size = o.step_epochs > 0 ? std::int64_t(std::llround(o.step_epochs * spe)) : main_steps / 3;
    return wrap(fnn::optim::step_lr(o.lr, std::max<std::int64_t>(size, 1), o.gamma));
  }
  if (o.schedule == "multistep") {
    auto m = parse_milestones(o.milestones);
    for (auto& v : m) v *= steps_per_epoch;
    return wrap(fnn::optim::multi_step_lr(o.lr, m, o.gamma));
  }
  if (o.schedule == "exponential") return wrap(fnn::optim::exponential_lr(o.lr, std::pow(o.gamma, 1.0 / spe)));
  if (o.schedule == "inverse_time") return wrap(fnn::optim::inverse_time_lr(o.lr, o.k / spe));
  if (o.schedule == "warm_restarts")
    return wrap(fnn::optim::cosine_warm_restarts_lr(o.lr, std::max<std::int64_t>(o.t0 * steps_per_epoch, 1), o.t_mult,
                                                    o.eta_min));
  if (o.schedule == "constant") {
    struct constant {
      double lr;
      double lr_at(std::int64_t) const { return lr; }
    };
    return wrap(constant{double(o.lr)});
  }
  if (o.schedule == "plateau")
    throw fnn::value_error("--schedule plateau follows the validation metric, not the step count (train() runs it)");
  throw fnn::value_error("unknown schedule '" + o.schedule +
                         "' (cosine, constant, step, multistep, exponential, inverse_time, warm_restarts, plateau)");
}

struct result {
  evaluation test;         // of the model the run hands over (the best epoch's with --early-stop)
  evaluation val;          // of the last epoch (with --val)
  std::optional<evaluation> averaged_test;  // of averaged.safetensors (with --average)
  std::optional<evaluation> ema_test;       // of ema.safetensors (with --ema)
  int epochs_run = 0;      // by this process
  int last_epoch = 0;      // the run's last epoch (an early stop ends before --epochs)
  int best_epoch = 0;      // by the monitored validation metric (with --val)
  bool stopped_early = false;
  double best_val = std::nan("");  // the monitored validation metric at the best epoch
  double seconds = 0;
};

// Progress output: one line redrawn with \r on a terminal, cut to the terminal's width so it never wraps
// (a wrapped line is not erased by \r and stale lines pile up); a few plain lines otherwise. Shows the
// learning rate, this epoch's ETA and the whole run's.
class progress final {
 public:
  progress(std::FILE* out, bool tty) : out_(out), tty_(tty) {}
  // The run (this process's part of it) has `steps` optimizer steps in all.
  void start_run(std::int64_t steps) {
    run_steps_ = steps, run_done_ = 0;
    run_t0_ = clock::now();
  }
  void start(int epoch, int epochs, fnn::index_t steps) {
    epoch_ = epoch, epochs_ = epochs, steps_ = steps;
    t0_ = last_ = clock::now();
    next_line_ = 1;
  }
  void update(fnn::index_t step, double loss, double acc, double samples, double lr) {
    ++run_done_;
    if (out_ == nullptr) return;
    const auto now = clock::now();
    const double el = seconds(t0_, now);
    const double rate = el > 0 ? samples / el : 0;
    const double eta = step > 0 ? el * double(steps_ - step) / double(step) : 0;
    const double run_el = seconds(run_t0_, now);
    const double run_eta = run_done_ > 0 ? run_el * double(run_steps_ - run_done_) / double(run_done_) : 0;
    const bool line_due = !tty_ && next_line_ < 4 && step * 4 >= steps_ * next_line_;
    if (tty_ && (step == steps_ || seconds(last_, now) >= 0.1)) {
      last_ = now;
      std::fprintf(out_, "\r\033[K%s", line(step, loss, acc, lr, rate, eta, run_eta, terminal_columns(), true).c_str());
      std::fflush(out_);
    } else if (line_due) {  // a log file: four plain lines per epoch
      ++next_line_;
      std::fprintf(out_, "%s\n", line(step, loss, acc, lr, rate, eta, run_eta, 80, false).c_str());
      std::fflush(out_);
    }
  }

  // The fields a user needs first, then the rate and (on a terminal) the bar while they fit in `cols` - 1.
  std::string line(fnn::index_t step, double loss, double acc, double lr, double rate, double eta, double run_eta,
                   int cols, bool bar) const {
    char head[32], core[160], speed[32];
    std::snprintf(head, sizeof head, "epoch %d/%d", epoch_, epochs_);
    std::snprintf(core, sizeof core, " %ld/%ld loss %.4f acc %.4f lr %.1e ETA %s run %s", long(step), long(steps_),
                  loss, acc, lr, duration_text(eta).c_str(), duration_text(run_eta).c_str());
    std::snprintf(speed, sizeof speed, " %.1fk/s", rate / 1000);
    int room = cols - 1 - int(std::strlen(head) + std::strlen(core));
    const bool show_speed = room >= int(std::strlen(speed));
    if (show_speed) room -= int(std::strlen(speed));
    std::string text = head;
    if (bar && room >= 8) {  // " [" + at least 5 cells + "]"
      const int width = std::min(room - 3, 24), filled = int(double(width) * double(step) / double(steps_));
      text += " [" + std::string(std::size_t(filled), '=') + std::string(std::size_t(width - filled), ' ') + "]";
    }
    text += core;
    if (show_speed) text += speed;
    if (int(text.size()) > cols - 1) text.resize(std::size_t(std::max(cols - 1, 0)));
    return text;
  }
  void finish_line() {
    if (out_ != nullptr && tty_) std::fprintf(out_, "\r\033[K");
  }

  static std::string duration_text(double s) {
    char b[32];
    if (s < 60) std::snprintf(b, sizeof b, "%.1fs", s);
    else if (s < 3600) std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
    else std::snprintf(b, sizeof b, "%dh%02dm", int(s) / 3600, int(s) % 3600 / 60);
    return b;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
  int terminal_columns() const {
    ::winsize ws{};
    if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char* c = std::getenv("COLUMNS");
    return c != nullptr && std::atoi(c) > 0 ? std::atoi(c) : 80;
  }
  std::FILE* out_;
  bool tty_;
  int epoch_ = 0, epochs_ = 0, next_line_ = 1;
  fnn::index_t steps_ = 0;
  std::int64_t run_steps_ = 0, run_done_ = 0;
  clock::time_point t0_, last_, run_t0_;
};

namespace detail {

inline std::string meta_or(const fnn::io::metadata& m, const std::string& key, const std::string& fallback = "") {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

inline const char* metrics_header =
    "epoch,step,lr,train_loss,train_accuracy,test_loss,test_accuracy,epoch_seconds,samples_per_second";

// metrics.csv from its rows, replaced atomically (a crash or a full disk leaves the previous version).
inline std::string metrics_header_for(bool val);
inline void write_metrics(const std::filesystem::path& path, const std::string& rows, bool val = false) {
  fnn::io::write_file_atomic(path, metrics_header_for(val) + "\n" + rows);
}

// The rows kept in a training state: exactly one per epoch 1..epochs, in order (else the state is refused).
inline void check_metrics_rows(const std::filesystem::path& path, const std::string& rows, int epochs) {
  int expected = 1;
  for (std::size_t at = 0; at < rows.size(); ++expected) {
    const std::size_t end = rows.find('\n', at);
    const std::string line = rows.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (end == std::string::npos || line.rfind(std::to_string(expected) + ",", 0) != 0)
      throw fnn::io_error(path.string() + ": its metrics rows are damaged (expected a row for epoch " +
                          std::to_string(expected) + ", found \"" + line.substr(0, 40) + "\")");
    at = end + 1;
  }
  if (expected - 1 != epochs)
    throw fnn::io_error(path.string() + ": holds metrics rows for " + std::to_string(expected - 1) +
                        " epochs, but is the state after epoch " + std::to_string(epochs));
}

inline std::string metrics_header_for(bool val) {
  return val ? "epoch,step,lr,train_loss,train_accuracy,val_loss,val_accuracy,epoch_seconds,samples_per_second"
             : metrics_header;
}

// What a model export says of itself (fnn-eval reads the standardization; torch ignores it all).
inline fnn::io::metadata model_metadata(const options& o, int epoch, const std::string& score, const standardizer& stdz) {
  fnn::io::metadata m{{"format", "pt"},
                      {"fnn.architecture", architecture},
                      {"fnn.layers", fnn::layers_text<net_t>()},
                      {"epoch", std::to_string(epoch)},
                      {o.val.empty() ? "test_accuracy" : "val_accuracy", score}};
  if (o.standardize) stdz.write_metadata(m);
  return m;
}

// Loss of the untrained network on (up to) the first 1000 training images, in eval mode (no side effects).
inline double initial_loss(net_t& net, const dataset& train, const standardizer* stdz) {
  const fnn::index_t n = std::min<fnn::index_t>(train.size(), 1000);
  fnn::matrix<float> x(n, 784);
  train.to_float(0, n, x.data());
  if (stdz != nullptr) stdz->apply(x.view());
  const auto logits = net.infer(x.view());
  return double(fnn::loss::softmax_cross_entropy{}(logits, std::span<const std::int32_t>(train.y.data(), std::size_t(n)),
                                                    fnn::matrix_view<float>{}));
}

// The score of a model on a data set, with test-time augmentation when asked: the probabilities averaged over
// the image and its shifted/flipped copies (fnn::train::tta_probabilities), each standardized after the shift
// as a training image is. Returned as log-probabilities, which the loss and the argmax read as logits.
inline evaluation evaluate_model(net_t& net, const dataset& d, const standardizer* stdz, bool tta) {
  if (!tta) return evaluate(net, d, stdz);
  fnn::matrix<float> logp, copy;
  return evaluate_with(
      [&](fnn::const_matrix_view<float> x) -> fnn::const_matrix_view<float> {
        const auto p = fnn::train::tta_probabilities(x, 28, 28, fnn::train::default_tta(),
                                                     [&](fnn::const_matrix_view<float> v) {
                                                       copy = fnn::matrix<float>(v.rows(), v.cols(),
                                                                                 std::span<const float>(v.data(), std::size_t(v.size())));
                                                       if (stdz != nullptr) stdz->apply(copy.view());
                                                       return net.infer(copy.view());
                                                     });
        logp = fnn::matrix<float>(p.rows(), p.cols());
        for (fnn::index_t i = 0; i < p.size(); ++i) logp.data()[i] = std::log(std::max(p.data()[i], 1e-30f));
        return logp.view();
      },
      d, nullptr);
}

inline std::filesystem::path snapshot_path(const std::filesystem::path& out, int epoch) {
  return out / ("epoch-" + std::to_string(epoch) + ".safetensors");
}

// The epoch a model export records, 0 if the file is missing or says nothing readable.
inline int export_epoch(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return 0;
  const auto f = fnn::io::read_safetensors(path);
  return int(fnn::io::metadata_integer(path, f.metadata, "epoch", 1, 1 << 30));
}

// Words of `text` on lines of at most `width` columns, indented by two spaces.
inline std::string wrapped(const std::string& text, std::size_t width) {
  std::string out, line = " ";
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    if (line.size() > 1 && line.size() + 1 + w.size() > width) out += line + "\n", line = " ";
    line += " " + w;
  }
  return out + line + "\n";
}

// Options that name where and how this process runs, not what the run computes: never compared on resume.
inline bool runtime_only(const std::string& name) {
  // "distributed" too: the rank count the state records is checked instead.
  for (const char* k : {"data", "out", "resume", "stop_after", "quiet", "threads", "distributed"})
    if (name == k) return true;
  return false;
}

// ReduceLROnPlateau's state and the rate it set, in the training state's metadata ("fnn.plateau.*"; the best
// value as %.17g, so it reads back bit for bit; "inf" before the first epoch).
inline void write_plateau(fnn::io::metadata& m, const fnn::optim::reduce_lr_on_plateau& p, double lr) {
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", p.state().best);
  m["fnn.plateau.best"] = b;
  std::snprintf(b, sizeof b, "%.17g", lr);
  m["fnn.plateau.lr"] = b;
  m["fnn.plateau.num_bad_epochs"] = std::to_string(p.state().num_bad_epochs);
  m["fnn.plateau.cooldown_counter"] = std::to_string(p.state().cooldown_counter);
  m["fnn.plateau.last_epoch"] = std::to_string(p.state().last_epoch);
}
inline double read_plateau(const std::filesystem::path& path, const fnn::io::metadata& m,
                           fnn::optim::reduce_lr_on_plateau& p) {
  const auto real = [&](const std::string& key) {
    const auto it = m.find(key);
    if (it == m.end())
      throw fnn::io_error(path.string() + ": has no \"" + key + "\" (made without --schedule plateau?)");
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0' || std::isnan(v))
      throw fnn::io_error(path.string() + ": __metadata__ \"" + key + "\" has a bad value \"" + it->second.substr(0, 40) + "\"");
    return v;
  };
  fnn::optim::plateau_state s;
  s.best = real("fnn.plateau.best");
  s.num_bad_epochs = fnn::io::metadata_integer(path, m, "fnn.plateau.num_bad_epochs", 0, 1 << 30);
  s.cooldown_counter = fnn::io::metadata_integer(path, m, "fnn.plateau.cooldown_counter", 0, 1 << 30);
  s.last_epoch = fnn::io::metadata_integer(path, m, "fnn.plateau.last_epoch", 0, 1 << 30);
  p.set_state(s);
  const double lr = real("fnn.plateau.lr");
  if (!(lr >= 0) || !std::isfinite(lr))
    throw fnn::io_error(path.string() + ": __metadata__ \"fnn.plateau.lr\" must be a finite rate >= 0");
  return lr;
}

// The weight average in the training state: "extra.ema.<state_dict name>" per parameter, "fnn.ema.updates".
inline std::vector<fnn::io::tensor_entry> ema_tensors(net_t& net, const fnn::optim::ema& avg) {
  std::vector<fnn::io::tensor_entry> out;
  std::size_t i = 0;
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) {
    out.push_back(fnn::io::make_tensor<float>("ema." + p.name(), fnn::io::detail::parameter_shape(p), avg.shadow(i++)));
  });
  return out;
}
inline void read_ema(const fnn::io::safetensors_file& file, const fnn::io::metadata& meta, net_t& net,
                     fnn::optim::ema& avg) {
  if (!meta.count("fnn.ema.updates"))
    throw fnn::value_error(file.path.string() + ": was made without --ema; resume without it");
  const auto updates = fnn::io::metadata_integer(file.path, meta, "fnn.ema.updates", 1, std::int64_t(1) << 53);
  std::vector<std::vector<float>> shadow;
  net.for_each_parameter([&](fnn::parameter_ref<float>& p) {
    shadow.push_back(file.values<float>("extra.ema." + p.name(), fnn::io::detail::parameter_shape(p)));
  });
  avg.set_state(std::move(shadow), updates);
}

template <class Opt>
result train_with(const options& o, Opt opt, std::FILE* out, world& w) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  if (o.epochs < 1) throw fnn::value_error("--epochs must be >= 1, got " + std::to_string(o.epochs));
  if (o.batch < 2) throw fnn::value_error("--batch must be >= 2 (batch_norm), got " + std::to_string(o.batch));
  if (!(o.noise >= 0) || !std::isfinite(o.noise)) throw fnn::value_error("--noise must be a finite number >= 0");
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) throw fnn::value_error("--lr must be a finite number >= 0");
  const bool has_val = !o.val.empty();
  if (o.early_stop < 0) throw fnn::value_error("--early-stop must be >= 0, got " + std::to_string(o.early_stop));
  if (o.early_stop > 0 && !has_val)
    throw fnn::value_error("--early-stop needs a validation split (--val FRACTION|COUNT): stopping on the test set "
                           "would tune the model to it");
  if (o.monitor != "loss" && o.monitor != "accuracy")
    throw fnn::value_error("--monitor must be loss or accuracy, got '" + o.monitor + "'");
  if (o.average < 0 || o.average > o.epochs)
    throw fnn::value_error("--average must be in [0, --epochs " + std::to_string(o.epochs) + "], got " +
                           std::to_string(o.average));
  if (!(o.penalty_l1 >= 0) || !(o.penalty_l2 >= 0)) throw fnn::value_error("--penalty-l1/--penalty-l2 must be >= 0");
  if (!(o.ema >= 0 && o.ema < 1)) throw fnn::value_error("--ema must be a decay in [0, 1) (0: off), got " + std::to_string(o.ema));
  std::optional<fnn::optim::ema> ema;
  if (o.ema > 0) ema.emplace(fnn::optim::ema_options<float>{.decay = o.ema, .warmup = o.ema_warmup});
  const auto check_sync = [&] {
    if (o.sync_batch_norm && !w.distributed())
      throw fnn::value_error("--sync-batch-norm needs --distributed (one process already normalizes over its whole batch)");
  };
  if (!o.resume) check_sync();  // on --resume after the state's rank count is checked: that message says more
  const bool root = w.root();  // the one rank that writes files and prints
  if (!root) out = nullptr;
#ifdef FNN_TRAIN_HAS_THREADS
  if (o.threads > 0) fnn::set_num_threads(o.threads);
#endif

  // The output directory first: a read-only or busy --out is reported before minutes of loading and training.
  // Rank 0 alone owns it (the other ranks may run on machines without it).
  std::error_code ec;
  std::optional<run_lock> lock;
  if (root) {
    std::filesystem::create_directories(o.out, ec);
    if (ec) throw fnn::io_error(o.out.string() + ": cannot create the output directory: " + ec.message());
    lock.emplace(o.out);
    remove_stale_temporaries(o.out);
  }
  const auto state_path = o.out / "state.safetensors";
  const auto model_path = o.out / "model.safetensors";
  const auto best_path = o.out / "best.safetensors";
  const auto averaged_path = o.out / "averaged.safetensors";
  const auto ema_path = o.out / "ema.safetensors";
  const auto metrics_path = o.out / "metrics.csv";

  dataset train = load_split(o.data, fnn::io::split::train, o.subset);
  dataset test = load_split(o.data, fnn::io::split::test, o.test_subset);
  dataset val;
  if (has_val) {
    auto so = fnn::data::parse_split_size(o.val);
    so.stratified = o.stratify;
    so.seed = o.seed;
    const auto parts = fnn::data::validation_split(train.y, so);
    val = subset_of(train, parts.validation);
    train = subset_of(train, parts.train);
  }
  if (train.size() < 2) throw fnn::value_error("need at least 2 training samples, got " + std::to_string(train.size()));
  standardizer stdz;
  if (o.standardize) stdz = fit_standardizer(train);
  const standardizer* stdzp = o.standardize ? &stdz : nullptr;

  const fnn::index_t batch = o.batch;  // per rank
  const int ranks = w.size(), rank = w.rank();
  // Distributed: full global batches only (the last incomplete one of each epoch is left out, as
  // DistributedSampler(drop_last=True) does), so every rank's slice has `batch` samples and the mean of the
  // ranks' gradients is the global batch's.
  const fnn::index_t global_batch = batch * ranks;
  const fnn::index_t steps = w.distributed() ? train.size() / global_batch : steps_per_epoch(train.size(), batch);
  if (steps < 1)
    throw fnn::value_error("--distributed: " + std::to_string(train.size()) + " training samples make no global batch of " +
                           std::to_string(global_batch) + " (" + std::to_string(ranks) + " ranks x --batch " +
                           std::to_string(batch) + ")");
  // --schedule plateau: the rate changes only at the end of an epoch, from the validation metric.
  const bool on_plateau = o.schedule == "plateau";
  if (on_plateau && !has_val)
    throw fnn::value_error("--schedule plateau needs --val: it lowers the rate when the validation metric stops "
                           "improving (the test set stays unseen until the end)");
  if (on_plateau && o.warmup > 0) throw fnn::value_error("--schedule plateau takes no --warmup");
  fnn::optim::reduce_lr_on_plateau plateau{{.mode = o.monitor == "loss" ? fnn::optim::plateau_mode::min
                                                                        : fnn::optim::plateau_mode::max,
                                            .factor = o.plateau_factor,
                                            .patience = o.plateau_patience,
                                            .threshold = o.plateau_threshold,
                                            .cooldown = o.plateau_cooldown,
                                            .min_lr = o.plateau_min_lr}};
  double plateau_lr = o.lr;
  const auto lr_at = on_plateau ? std::function<double(std::int64_t)>([&](std::int64_t) { return plateau_lr; })
                                : make_schedule(o, steps, std::int64_t(steps) * o.epochs);
  fnn::train::early_stopping es{{.patience = o.early_stop,
                                 .min_delta = o.min_delta,
                                 .direction = o.monitor == "loss" ? fnn::train::goal::minimize
                                                                  : fnn::train::goal::maximize}};
  net_t net{fnn::seed{o.seed}};
  if (o.freeze < 0 || std::size_t(o.freeze) > net_t::layer_count)
    throw fnn::value_error("--freeze must be in [0, " + std::to_string(net_t::layer_count) + "] layers, got " +
                           std::to_string(o.freeze));
  if (o.init_layers < 0 || std::size_t(o.init_layers) > net_t::layer_count)
    throw fnn::value_error("--init-layers must be in [0, " + std::to_string(net_t::layer_count) + "], got " +
                           std::to_string(o.init_layers));
  if (o.init_layers > 0 && o.init_from.empty()) throw fnn::value_error("--init-layers needs --init-from CHECKPOINT");
  // A resumed run has its weights in the state; a new one starts from --init-from when given (strict: every
  // tensor of the part loaded must match by name, dtype and shape).
  // (Distributed: rank 0 loads it; data_parallel then gives every rank rank 0's parameters and statistics.)
  if (!o.init_from.empty() && !o.resume && root) {
    if (o.init_layers > 0) fnn::io::load_model_part(o.init_from, net, {.layers = std::size_t(o.init_layers)});
    else fnn::io::load_model(o.init_from, net);
  }
  // The frozen flags are not in the state: applied on every start, resumed or not.
  if (o.freeze > 0) net.freeze_layers(0, std::size_t(o.freeze));
  int first_epoch = 1;
  int last_good = 0;      // the epoch of the training state on disk (0: none)
  std::string rows;       // metrics.csv without its header; kept in the training state too
  result r;
  const std::string ranks_now = w.distributed() ? std::to_string(ranks) : "";
  if (o.resume) {
    const std::optional<fnn::io::safetensors_file> state_file = w.read_on_root(state_path);
    if (!state_file) {
      if (root && std::filesystem::exists(o.out / "optimizer.safetensors", ec))
        throw fnn::io_error(o.out.string() +
                            ": holds model.safetensors + optimizer.safetensors of an older fnn-train, which cannot be "
                            "checked for consistency; start a new run");
      throw fnn::io_error(o.out.string() + ": nothing to resume (no state.safetensors: no epoch was completed)");
    }
    const auto& file = *state_file;
    const std::string saved_ranks = meta_or(file.metadata, "fnn.distributed.ranks");
    if (saved_ranks != ranks_now)
      throw fnn::value_error(state_path.string() + ": was made by " +
                             (saved_ranks.empty() ? std::string("one process (not --distributed)")
                                                  : saved_ranks + " ranks (mpirun -np " + saved_ranks + " fnn-train --distributed)") +
                             ", this run is " +
                             (ranks_now.empty() ? std::string("one process") : "on " + ranks_now + (ranks == 1 ? " rank" : " ranks")) +
                             ": resume with the same number (each rank's slice of every batch depends on it)");
    check_sync();
    const std::string saved_opt = meta_or(file.metadata, "optimizer");
    if (saved_opt != o.optimizer)
      throw fnn::value_error(state_path.string() + ": saved by optimizer '" + saved_opt + "', this run uses '" +
                             o.optimizer + "' (pass --optimizer " + saved_opt + ")");
    // All-or-nothing and checksummed: a damaged or forged state is refused before anything else is believed.
    const auto meta = fnn::io::load_training_state(file, net, opt);
    const auto epoch = fnn::io::metadata_integer(state_path, meta, "epoch", 1, 1 << 30);
    if (epoch > o.epochs)
      throw fnn::value_error(state_path.string() + ": is the state after epoch " + std::to_string(epoch) +
                             ", past the --epochs " + std::to_string(o.epochs) + " of this run");
    const auto step = fnn::io::metadata_integer(state_path, meta, "step", 0, std::int64_t(1) << 53);
    if (step != epoch * std::int64_t(steps))
      throw fnn::value_error(state_path.string() + ": step " + std::to_string(step) + " after epoch " +
                             std::to_string(epoch) + " does not match " + std::to_string(steps) +
                             " steps per epoch of this run (" + std::to_string(train.size()) + " samples, batch " +
                             std::to_string(o.batch) + "): different --batch or --subset?");
    check_metrics_rows(state_path, meta_or(meta, "metrics"), int(epoch));
    for (const auto& [key, now] : {std::pair<std::string, std::string>{"seed", std::to_string(o.seed)},
                                   {"epochs", std::to_string(o.epochs)},
                                   {"lr", std::to_string(o.lr)},
                                   {"schedule", o.schedule},
                                   {"standardize", o.standardize ? "1" : "0"},
                                   {"augment", o.augment ? "1" : "0"},
                                   {"noise", std::to_string(o.noise)}})
      if (out != nullptr && meta_or(meta, key, now) != now)
        std::fprintf(out, "warning: resuming with %s %s, the checkpoint was made with %s: not the same run\n",
                     key.c_str(), now.c_str(), meta_or(meta, key).c_str());
    // Every other hyper-parameter, through the reflected options (older states have none: nothing to compare).
    for_each_setting(o, [&](const char* name, const auto& v) {
      const std::string key = std::string("fnn.train.") + name;
      const std::string now = fnn::train::codec<std::decay_t<decltype(v)>>::to_text(v);
      if (out != nullptr && !runtime_only(name) && meta.count(key) && meta.at(key) != now &&
          !meta.count(name))  // the keys above were reported already
        std::fprintf(out, "warning: resuming with %s %s, the checkpoint was made with %s: not the same run\n", name,
                     now.c_str(), meta.at(key).c_str());
    });
    // The optimizer's hyper-parameters as saved: the learning rate of the last step is restored (the schedule
    // sets the next one anyway), any other difference is reported.
    auto saved = opt.options();
    fnn::train::read_options(state_path, meta, "fnn.optimizer", saved);
    const float saved_lr = saved.lr;
    saved.lr = opt.options().lr;
    if (out != nullptr && fnn::train::describe_options(saved) != fnn::train::describe_options(opt.options()))
      std::fprintf(out, "warning: resuming with optimizer options\n%sthe checkpoint was made with\n%s",
                   wrapped(fnn::train::describe_options(opt.options()), 80).c_str(),
                   wrapped(fnn::train::describe_options(saved), 80).c_str());
    opt.set_lr(saved_lr);
    if (has_val) {
      if (!meta.count("fnn.early_stopping.best"))
        throw fnn::value_error(state_path.string() + ": was made without a validation split; resume without --val");
      es.read_metadata(state_path, meta);
    }
    if (on_plateau) plateau_lr = read_plateau(state_path, meta, plateau);
    if (ema) read_ema(file, meta, net, *ema);
    first_epoch = int(epoch) + 1;
    last_good = int(epoch);
    rows = meta_or(meta, "metrics");
    // The exports follow the state: a crash between the state's rename and theirs left them one epoch behind.
    const std::string score = meta_or(meta, has_val ? "val_accuracy" : "test_accuracy");
    if (root) fnn::io::save_model(model_path, net, model_metadata(o, int(epoch), score, stdz));
    if (root && has_val && es.best_epoch() == int(epoch)) {
      fnn::io::save_model(best_path, net, model_metadata(o, int(epoch), score, stdz));
    } else if (root && has_val && es.best_epoch() > 0 && export_epoch(best_path) != es.best_epoch()) {
      throw fnn::io_error(best_path.string() + ": should hold the best epoch " + std::to_string(es.best_epoch()) +
                          " of the training state, but " +
                          (export_epoch(best_path) ? "holds epoch " + std::to_string(export_epoch(best_path))
                                                   : std::string("is missing")));
    }
    if (root && o.average > 0)
      fnn::io::save_model(snapshot_path(o.out, int(epoch)), net, model_metadata(o, int(epoch), score, stdz));
    if (root) write_metrics(metrics_path, rows, has_val);
    if (o.early_stop > 0 && es.should_stop()) r.stopped_early = true;
    if (out != nullptr)
      std::fprintf(out, "resuming %s after epoch %d (step %lld)%s\n", o.out.c_str(), first_epoch - 1,
                   static_cast<long long>(opt.step_count()), r.stopped_early ? ": it had stopped early" : "");
  } else if (root) {
    if (std::filesystem::exists(state_path, ec) || std::filesystem::exists(model_path, ec)) {
      if (out != nullptr)
        std::fprintf(out, "warning: %s holds an earlier run, which this one replaces\n"
                          "  (--resume would continue it; --out names another directory)\n", o.out.c_str());
      std::filesystem::remove(state_path, ec);  // a crash before epoch 1 must not resume the earlier run
    }
    // Exports of an earlier run must not pass for this one's.
    std::filesystem::remove(best_path, ec);
    std::filesystem::remove(averaged_path, ec);
    std::filesystem::remove(ema_path, ec);
    for (const auto& e : std::filesystem::directory_iterator(o.out, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("epoch-", 0) == 0 && name.ends_with(".safetensors")) std::filesystem::remove(e.path(), ec);
    }
    write_metrics(metrics_path, rows, has_val);
  }

  if (out != nullptr && !o.resume) {
    // Lines of at most 80 columns.
    std::fprintf(out, "fnn-train: %s\n  %ld train / %s%ld test samples, %s lr %g (%s), batch %d, %d epochs\n",
                 architecture, long(train.size()), has_val ? (std::to_string(val.size()) + " val / ").c_str() : "",
                 long(test.size()), o.optimizer.c_str(), double(o.lr), o.schedule.c_str(), o.batch, o.epochs);
    if (w.distributed())
      std::fprintf(out, "  data parallel: %d ranks x batch %d = global batch %ld, %ld steps per epoch%s\n", ranks,
                   o.batch, long(global_batch), long(steps), o.sync_batch_norm ? ", SyncBatchNorm" : "");
    std::fprintf(out, "%s", wrapped(o.optimizer + ": " + fnn::train::describe_options(opt.options()), 80).c_str());
    std::fprintf(out, "initial loss %.4f (untrained, %d classes: expect about ln %d = %.4f)\n",
                 initial_loss(net, train, stdzp), classes, classes, std::log(double(classes)));
  }

  const fnn::loss::softmax_cross_entropy ce;
  const fnn::data::image_augment augment{{.rows = 28, .cols = 28, .max_shift = 2, .horizontal_flip = true}};
  const bool penalized = o.penalty_l1 > 0 || o.penalty_l2 > 0;
  fnn::matrix<float> xb;
  std::vector<std::int32_t> yb;
#ifdef FNN_TRAIN_MPI
  // Made after a resume has loaded the state (on every rank, from rank 0's bytes): its broadcast of rank 0's
  // parameters then changes nothing, and from here on the replicas stay identical (checked every epoch).
  std::optional<fnn::distributed::data_parallel<net_t>> dp;
  if (w.distributed()) dp.emplace(net, w.comm(), fnn::distributed::data_parallel_options{.sync_batch_norm = o.sync_batch_norm});
#endif
  const auto step_on = [&](const std::span<const std::int32_t> labels, const auto&... penalties) {
#ifdef FNN_TRAIN_MPI
    if (dp) return dp->train_step(xb.view(), labels, ce, opt, penalties...);
#endif
    return net.train_step(xb.view(), labels, ce, opt, penalties...);
  };
  progress bar(out, out != nullptr && ::isatty(::fileno(out)));
  bar.start_run(r.stopped_early ? 0 : std::int64_t(steps) * (o.epochs - first_epoch + 1));
  const auto good_text = [&] {
    return last_good > 0 ? "the last good checkpoint (epoch " + std::to_string(last_good) + ") is kept in " +
                               o.out.string() + "."
                         : std::string("no checkpoint was written (the run diverged in its first epoch).");
  };
  for (int epoch = first_epoch; epoch <= o.epochs && !r.stopped_early; ++epoch) {
    const auto t_epoch = clock::now();
    auto rng = epoch_engine(o.seed, epoch);
    const auto order = shuffled_indices(train.size(), rng);  // the same on every rank
    // Rank 0 augments with what follows the shuffle in the epoch's engine (so one rank is one process);
    // the other ranks with engines of their own, also derived from (seed, epoch).
    if (rank > 0) rng = epoch_engine(fnn::data::splitmix64(o.seed ^ (0x9E3779B97F4A7C15ull * std::uint64_t(rank))), epoch);
    fnn::data::gaussian_noise noise(o.noise);
    double loss_sum = 0, seen = 0, seen_here = 0;
    long correct = 0;
    bar.start(epoch, o.epochs, steps);
    for (fnn::index_t s = 0; s < steps; ++s) {
      // Global batch s is the per-rank batches s*N .. s*N + N-1; this rank takes its own.
      const auto idx = fnn::data::batch_of(order, s * ranks + rank, batch);
      const auto n = fnn::index_t(idx.size());
      xb.resize(n, 784);
      yb.resize(std::size_t(n));
      for (fnn::index_t i = 0; i < n; ++i) {
        const auto src = idx[std::size_t(i)];
        train.to_float(src, 1, xb.view().row(i));
        yb[std::size_t(i)] = train.y[std::size_t(src)];
        if (o.augment) augment(xb.view().row(i), rng);
        if (o.noise > 0) noise(std::span<float>(xb.view().row(i), 784), rng);
      }
      if (o.standardize) stdz.apply(xb.view());
      const double lr = lr_at(opt.step_count());
      opt.set_lr(float(lr));
      const std::span<const std::int32_t> labels(yb);
      // The loss and gradient norm are the global batch's on every rank (so are the decisions below).
      const fnn::train_stats<float> st =
          penalized ? step_on(labels, fnn::penalty::l1{o.penalty_l1}, fnn::penalty::l2{o.penalty_l2}) : step_on(labels);
      const float loss = st.loss;
      if (!st.finite) {
        bar.finish_line();
        const std::string what = !std::isfinite(loss) ? std::string("loss is ") + (std::isnan(loss) ? "NaN" : "infinite")
                                                      : "gradient norm is " + std::to_string(st.grad_norm);
        throw diverged("training diverged at epoch " + std::to_string(epoch) + ", batch " + std::to_string(s + 1) +
                       "/" + std::to_string(steps) + " (optimizer step " + std::to_string(opt.step_count()) +
                       "): " + what + "; " + good_text() + " Try a smaller --lr.");
      }
      if (ema) ema->update(net);
      crash_point("step");  // (tests: a rank that dies mid-epoch)
      const auto logits = net.output();
      for (fnn::index_t i = 0; i < n; ++i) correct += argmax(logits.row(i)) == yb[std::size_t(i)];
      loss_sum += double(loss) * double(n * ranks);
      seen += double(n * ranks);
      seen_here += double(n);
      bar.update(s + 1, loss_sum / seen, double(correct) / seen_here, seen, lr);  // accuracy: rank 0's slices
    }
    correct = long(w.sum(correct));
    // The loss is computed before each update, so the last update of the epoch is checked here: nothing
    // non-finite is ever written.
    if (const std::string bad = fnn::io::first_non_finite(net, opt); !bad.empty()) {
      bar.finish_line();
      throw diverged("training diverged at epoch " + std::to_string(epoch) + " (optimizer step " +
                     std::to_string(opt.step_count()) + "): its updates left " + bad + "; " + good_text() +
                     " Try a smaller --lr.");
    }
#ifdef FNN_TRAIN_MPI
    if (dp) dp->check_replicas_identical();  // a checksum of every parameter and statistic, per epoch
#endif
    const double train_seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();
    // Per-epoch scores: on the validation split when there is one (the test set stays unseen until the end).
    const evaluation scored = evaluate(net, has_val ? val : test, stdzp);
    (has_val ? r.val : r.test) = scored;
    const bool improved = has_val && es.update(o.monitor == "loss" ? scored.loss : scored.accuracy);
    if (on_plateau) plateau_lr = plateau.step(o.monitor == "loss" ? scored.loss : scored.accuracy, plateau_lr);
    const double epoch_seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();
    char row[512];
    std::snprintf(row, sizeof row, "%d,%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f\n", epoch,
                  static_cast<long long>(opt.step_count()), lr_at(opt.step_count()), loss_sum / seen,
                  double(correct) / seen, scored.loss, scored.accuracy, epoch_seconds, seen / train_seconds);
    rows += row;
    const std::string score = std::to_string(scored.accuracy);

    // The training state is the one commit point: its rename makes the epoch durable. The exports (model,
    // best, the epoch snapshot for --average) and metrics.csv follow it, and are rewritten from it on --resume
    // if a crash came in between; best.safetensors of an earlier best epoch was complete before this epoch began.
    fnn::io::metadata meta{{"optimizer", o.optimizer},
                           {"epoch", std::to_string(epoch)},
                           {"epochs", std::to_string(o.epochs)},
                           {"seed", std::to_string(o.seed)},
                           {"batch", std::to_string(o.batch)},
                           {"lr", std::to_string(o.lr)},
                           {"schedule", o.schedule},
                           {"train_samples", std::to_string(train.size())},
                           {"standardize", o.standardize ? "1" : "0"},
                           {"augment", o.augment ? "1" : "0"},
                           {"noise", std::to_string(o.noise)},
                           {"metrics", rows},
                           {has_val ? "val_accuracy" : "test_accuracy", score},
                           {"rng", "per-epoch mt19937_64 seeded from splitmix64(seed, epoch)"}};
    write_settings(meta, o);
    if (w.distributed()) meta["fnn.distributed.ranks"] = ranks_now;
    fnn::train::write_options(meta, "fnn.optimizer", opt.options());
    if (has_val) es.write_metadata(meta);
    if (on_plateau) write_plateau(meta, plateau, plateau_lr);
    if (ema) meta["fnn.ema.updates"] = std::to_string(ema->num_updates());
    if (root) {
      fnn::io::save_training_state(state_path, net, opt, meta, ema ? ema_tensors(net, *ema) : std::vector<fnn::io::tensor_entry>{});
      crash_point("state");
      fnn::io::save_model(model_path, net, model_metadata(o, epoch, score, stdz));
      crash_point("model");
      if (improved) {
        fnn::io::save_model(best_path, net, model_metadata(o, epoch, score, stdz));
        crash_point("best");
      }
      if (o.average > 0) {
        fnn::io::save_model(snapshot_path(o.out, epoch), net, model_metadata(o, epoch, score, stdz));
        std::filesystem::remove(snapshot_path(o.out, epoch - o.average), ec);  // only the last K are averaged
        crash_point("snapshot");
      }
      write_metrics(metrics_path, rows, has_val);
      crash_point("metrics");
    }
    last_good = epoch;
    bar.finish_line();
    if (out != nullptr) {
      std::fprintf(out, "epoch %2d/%d  train loss %.4f acc %.4f  %s loss %.4f acc %.4f%s  %.2f s\n", epoch, o.epochs,
                   loss_sum / seen, double(correct) / seen, has_val ? "val" : "test", scored.loss, scored.accuracy,
                   improved ? " *" : "", epoch_seconds);
      std::fflush(out);
    }
    ++r.epochs_run;
    if (o.early_stop > 0 && es.should_stop()) {
      r.stopped_early = true;
      if (out != nullptr)
        std::fprintf(out, "early stop: no improvement of val %s by more than %g for %d epochs (best epoch %d)\n",
                     o.monitor.c_str(), o.min_delta, es.epochs_without_improvement(), es.best_epoch());
    }
    if (o.stop_after > 0 && epoch >= o.stop_after) break;
  }
  r.last_epoch = last_good;
  r.best_epoch = es.best_epoch();
  r.best_val = es.best();
  const bool finished = r.stopped_early || last_good == o.epochs;
  // Batch-norm statistics of averaged weights (--average, --ema) over the training set, in order, without
  // augmentation: the statistics the live weights gathered do not fit an average of other weights.
  const auto recompute_statistics = [&](net_t& avg) {
    fnn::matrix<float> xa;
    const fnn::index_t chunks = steps_per_epoch(train.size(), batch);
    fnn::train::recompute_batch_norm(avg, chunks, [&](fnn::index_t s) {
      const fnn::index_t first = s * batch, n = std::min(batch, train.size() - first);
      xa.resize(n, 784);
      train.to_float(first, n, xa.data());
      if (stdzp != nullptr) stdz.apply(xa.view());
      return fnn::const_matrix_view<float>(xa.view());
    });
  };
  // What follows reads the files rank 0 wrote (best, the snapshots) and needs no other rank.
  if (!root) {
    r.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
    return r;
  }

  // The model handed over: the best epoch's by the validation metric (with --val), else the last one's.
  if (has_val && r.best_epoch > 0 && r.best_epoch != last_good) fnn::io::load_model(best_path, net);
  r.test = evaluate_model(net, test, stdzp, o.tta && finished);
  if (o.average > 0 && finished) {
    std::vector<std::filesystem::path> files;
    std::string epochs_text;
    for (int e = std::max(1, last_good - o.average + 1); e <= last_good; ++e) {
      files.push_back(snapshot_path(o.out, e));
      epochs_text += (epochs_text.empty() ? "" : ",") + std::to_string(e);
    }
    net_t avg;
    fnn::train::average_checkpoints(avg, files);
    recompute_statistics(avg);
    auto meta = model_metadata(o, last_good, has_val ? std::to_string(evaluate(avg, val, stdzp).accuracy) : "", stdz);
    if (!has_val) meta.erase("test_accuracy");
    meta["fnn.averaged_epochs"] = epochs_text;
    fnn::io::save_model(averaged_path, avg, meta);
    r.averaged_test = evaluate_model(avg, test, stdzp, o.tta);
  }
  if (ema && finished) {
    net_t avg;
    ema->copy_to(avg);
    recompute_statistics(avg);
    auto meta = model_metadata(o, last_good, "", stdz);
    meta.erase(has_val ? "val_accuracy" : "test_accuracy");
    meta["fnn.ema.updates"] = std::to_string(ema->num_updates());
    fnn::io::save_model(ema_path, avg, meta);
    r.ema_test = evaluate_model(avg, test, stdzp, o.tta);
  }
  r.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  if (out != nullptr) {
    const std::string which = has_val && r.best_epoch > 0
                                  ? "best epoch " + std::to_string(r.best_epoch) + " of " + std::to_string(last_good) +
                                        " by val " + o.monitor
                                  : "epoch " + std::to_string(last_good);
    std::fprintf(out, "test accuracy %.4f%s (%ld samples, %s%s)\n%s", r.test.accuracy, o.tta && finished ? " with TTA" : "",
                 long(test.size()), which.c_str(), has_val ? ", scored once" : "", confusion_report(r.test).c_str());
    if (r.averaged_test)
      std::fprintf(out, "averaged model (last %d epochs, batch-norm statistics recomputed): test accuracy %.4f\n  %s\n",
                   o.average, r.averaged_test->accuracy, averaged_path.c_str());
    if (r.ema_test)
      std::fprintf(out, "weight average (--ema %g, batch-norm statistics recomputed): test accuracy %.4f\n  %s\n",
                   double(o.ema), r.ema_test->accuracy, ema_path.c_str());
    std::fprintf(out, "total time %.2f s\nmodel: %s%s\n", r.seconds, model_path.c_str(),
                 has_val && r.best_epoch > 0 ? ("\nbest:  " + best_path.string()).c_str() : "");
  }
  return r;
}

}  // namespace detail

// Trains as the options say; prints to `out` unless o.quiet. Throws fnn's errors and fnn_train::diverged.
// Every optimizer option not given keeps PyTorch's default. `w`: the ranks of a --distributed run (none: this
// process alone).
inline result train(const options& o, std::FILE* out = stdout, world* w = nullptr) {
  if (o.quiet) out = nullptr;
  world alone;
  if (w == nullptr && o.distributed) throw fnn::value_error("--distributed: train() was given no world of ranks");
  world& ranks = w != nullptr ? *w : alone;
  if (o.decay != "all" && o.decay != "weights_only")
    throw fnn::value_error("--decay must be all or weights_only, got '" + o.decay + "'");
  const auto decay = o.decay == "all" ? fnn::optim::decay_policy::all : fnn::optim::decay_policy::weights_only;
  const auto wd = [&](float fallback) { return o.weight_decay >= 0 ? o.weight_decay : fallback; };
  const auto eps = [&](float fallback) { return o.eps >= 0 ? o.eps : fallback; };
  if (o.optimizer == "adamw" || o.optimizer == "adam") {
    const bool w = o.optimizer == "adamw";
    fnn::optim::adam_options<float, true> a{.lr = o.lr, .betas = {o.beta1, o.beta2}, .eps = eps(1e-8f),
                                            .weight_decay = wd(w ? 1e-2f : 0.0f), .amsgrad = o.amsgrad, .l1 = o.l1,
                                            .max_grad_norm = o.max_grad_norm, .clip_value = o.clip_value, .decay = decay};
    if (w) return detail::train_with(o, fnn::optim::adamw{a}, out, ranks);
    return detail::train_with(o, fnn::optim::adam{{.lr = a.lr, .betas = a.betas, .eps = a.eps, .weight_decay = a.weight_decay,
                                                   .amsgrad = a.amsgrad, .l1 = a.l1, .max_grad_norm = a.max_grad_norm,
                                                   .clip_value = a.clip_value, .decay = decay}},
                              out, ranks);
  }
  if (o.optimizer == "sgd")
    return detail::train_with(o, fnn::optim::sgd{{.lr = o.lr, .momentum = o.momentum, .dampening = o.dampening,
                                                  .weight_decay = wd(0), .nesterov = o.nesterov, .l1 = o.l1,
                                                  .max_grad_norm = o.max_grad_norm, .clip_value = o.clip_value,
                                                  .decay = decay}},
                              out, ranks);
  if (o.optimizer == "rmsprop")
    return detail::train_with(o, fnn::optim::rmsprop{{.lr = o.lr, .alpha = o.alpha, .eps = eps(1e-8f),
                                                      .weight_decay = wd(0), .momentum = o.momentum,
                                                      .centered = o.centered, .l1 = o.l1,
                                                      .max_grad_norm = o.max_grad_norm, .clip_value = o.clip_value,
                                                      .decay = decay}},
                              out, ranks);
  if (o.optimizer == "adagrad")
    return detail::train_with(o, fnn::optim::adagrad{{.lr = o.lr, .lr_decay = o.lr_decay, .weight_decay = wd(0),
                                                      .initial_accumulator_value = o.initial_accumulator,
                                                      .eps = eps(1e-10f), .l1 = o.l1,
                                                      .max_grad_norm = o.max_grad_norm, .clip_value = o.clip_value,
                                                      .decay = decay}},
                              out, ranks);
  throw fnn::value_error("unknown optimizer '" + o.optimizer + "' (adamw, adam, sgd, rmsprop, adagrad)");
}

// The command line that reproduces a run: every option that differs from fnn-train's defaults, found through
// the reflected options (where the run is written and how many threads it uses are left out).
inline std::string command_line(const options& o) {
  const options defaults;
  std::map<std::string, std::string> plain;
  for_each_setting(defaults, [&](const char* name, const auto& v) {
    plain[name] = fnn::train::codec<std::decay_t<decltype(v)>>::to_text(v);
  });
  std::string cmd = "fnn-train";
  for_each_setting(o, [&](const char* name, const auto& v) {
    using field = std::decay_t<decltype(v)>;
    const std::string text = fnn::train::codec<field>::to_text(v);
    if (detail::runtime_only(name) || std::string(name) == "test_subset" || text == plain[name]) return;
    std::string flag = name;
    std::replace(flag.begin(), flag.end(), '_', '-');
    if constexpr (std::is_same_v<field, bool>) cmd += v ? " --" + flag : " --no-" + flag;
    else cmd += " --" + flag + " " + (text.empty() || text.find(' ') != std::string::npos ? "'" + text + "'" : text);
  });
  return cmd;
}

struct search_trial {
  int trial = 0;
  float lr = 0, weight_decay = 0;
  int best_epoch = 0;
  double best_val = 0;  // the monitored validation metric at the best epoch
};

// Random search (Bergstra and Bengio 2012) over the learning rate and the weight decay, both log-uniform (in
// [1e-4, 1e-2] and [1e-5, 1e-1]), from the run's seed: each trial is the run `base` describes, with its own
// values, in <out>/trial-<n>, judged on the validation split. Writes <out>/search.csv (one row per trial) and
// returns the trials best first.
inline std::vector<search_trial> random_search(const options& base, int trials, std::FILE* out = stdout) {
  if (trials < 1) throw fnn::value_error("--search needs at least 1 trial, got " + std::to_string(trials));
  if (base.distributed) throw fnn::value_error("--search runs its trials in one process: drop --distributed");
  if (base.val.empty())
    throw fnn::value_error("--search needs --val: trials are compared on the validation split, never on the test set");
  std::error_code ec;
  std::filesystem::create_directories(base.out, ec);
  if (ec) throw fnn::io_error(base.out.string() + ": cannot create the output directory: " + ec.message());
  std::mt19937_64 rng(fnn::data::splitmix64(base.seed ^ 0x5EA4C4ull));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const auto log_uniform = [&](double lo, double hi) { return float(lo * std::pow(hi / lo, u(rng))); };
  std::vector<search_trial> done;
  std::string csv = "trial,lr,weight_decay,best_epoch,best_val_" + base.monitor + "\n";
  for (int t = 1; t <= trials; ++t) {
    options o = base;
    o.lr = log_uniform(1e-4, 1e-2);
    o.weight_decay = log_uniform(1e-5, 1e-1);
    o.out = base.out / ("trial-" + std::to_string(t));
    o.quiet = true, o.resume = false, o.stop_after = 0, o.average = 0, o.tta = false;
    const auto r = train(o, nullptr);
    done.push_back({t, o.lr, o.weight_decay, r.best_epoch, r.best_val});
    char row[160];
    std::snprintf(row, sizeof row, "%d,%.6g,%.6g,%d,%.6f\n", t, double(o.lr), double(o.weight_decay), r.best_epoch,
                  r.best_val);
    csv += row;
    fnn::io::write_file_atomic(base.out / "search.csv", csv);
    if (out != nullptr) {
      std::fprintf(out, "trial %d/%d  lr %.3g  weight decay %.3g  best val %s %.4f (epoch %d)\n", t, trials,
                   double(o.lr), double(o.weight_decay), base.monitor.c_str(), r.best_val, r.best_epoch);
      std::fflush(out);
    }
  }
  std::stable_sort(done.begin(), done.end(), [&](const search_trial& a, const search_trial& b) {
    return base.monitor == "loss" ? a.best_val < b.best_val : a.best_val > b.best_val;
  });
  if (out != nullptr) {
    options best = base;
    best.lr = done.front().lr, best.weight_decay = done.front().weight_decay;
    std::fprintf(out, "best: trial %d (%s/search.csv)\n  %s\n", done.front().trial, base.out.c_str(),
                 command_line(best).c_str());
  }
  return done;
}

}  // namespace fnn_train
