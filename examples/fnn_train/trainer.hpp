#pragma once
// The main job behind fnn-train and fnn-eval: a typed MLP trained on Fashion-MNIST (or any MNIST-format
// directory), with progress, metrics, checkpoints and exact resume. Kept in a header so the unit tests
// (tests/unit/train) run the very same code on a small subset.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fnn/fnn.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/io/mnist.hpp"
#include "fnn/optim/optim.hpp"
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
inline constexpr const char* standardize_file = "standardize.safetensors";

struct options {
  int epochs = 10;
  int batch = 128;
  float lr = 1e-3f;
  std::string optimizer = "adamw";  // adamw (weight decay 1e-2), adam, sgd (momentum 0.9), rmsprop
  std::string schedule = "cosine";  // cosine over all steps, constant, step (x0.1 every third of the run)
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
  bool resume = false;
  int stop_after = 0;  // stop after this epoch as if interrupted (0: never; to test --resume)
  bool quiet = false;  // no output at all (tests)
};

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

// Per-feature standardization with statistics of the training set only. The standard deviation is floored
// at 0.05 (in pixel units of [0, 1]): Fashion-MNIST's border pixels are almost always 0, and dividing by
// their tiny spread would turn a faint test-set pixel into a huge input.
struct standardizer {
  std::vector<float> mean, std;

  // Of the float images (pixel / 255), summed image by image in order.
  static standardizer fit(const dataset& x) {
    constexpr std::size_t f = 784;
    std::vector<double> m(f, 0.0), m2(f, 0.0);
    std::array<float, f> row;
    for (fnn::index_t i = 0; i < x.size(); ++i) {
      x.to_float(i, 1, row.data());
      for (std::size_t j = 0; j < f; ++j) m[j] += row[j];
    }
    for (auto& v : m) v /= double(x.size());
    for (fnn::index_t i = 0; i < x.size(); ++i) {
      x.to_float(i, 1, row.data());
      for (std::size_t j = 0; j < f; ++j) {
        const double d = row[j] - m[j];
        m2[j] += d * d;
      }
    }
    standardizer s;
    for (std::size_t j = 0; j < f; ++j) {
      s.mean.push_back(float(m[j]));
      s.std.push_back(float(std::max(std::sqrt(m2[j] / double(x.size())), 0.05)));
    }
    return s;
  }
  void apply(fnn::matrix_view<float> x) const {
    for (fnn::index_t i = 0; i < x.rows(); ++i)
      for (fnn::index_t j = 0; j < x.cols(); ++j) x(i, j) = (x(i, j) - mean[std::size_t(j)]) / std[std::size_t(j)];
  }
  void save(const std::filesystem::path& path) const {
    const std::vector<fnn::io::tensor_entry> t{
        fnn::io::make_tensor<float>("mean", {std::int64_t(mean.size())}, std::span<const float>(mean)),
        fnn::io::make_tensor<float>("std", {std::int64_t(std.size())}, std::span<const float>(std))};
    fnn::io::write_safetensors(path, t);
  }
  static standardizer load(const std::filesystem::path& path) {
    const auto f = fnn::io::read_safetensors(path);
    return {f.values<float>("mean", {784}), f.values<float>("std", {784})};
  }
};

struct evaluation {
  double loss = 0;
  double accuracy = 0;
  std::array<std::array<long, classes>, classes> confusion{};  // [true][predicted]
};

inline int argmax(const float* z) { return int(std::max_element(z, z + classes) - z); }

// Standardizes each chunk with `stdz` when given (a model trained with --standardize).
inline evaluation evaluate(net_t& net, const dataset& d, const standardizer* stdz = nullptr) {
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
    const auto logits = net.infer(x.view());
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

// One engine per epoch, derived from (seed, epoch): an epoch's shuffle, shifts, flips and noise do not
// depend on what ran before, which is what makes --resume reproduce an uninterrupted run exactly.
inline std::mt19937_64 epoch_engine(std::uint64_t seed, int epoch) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * std::uint64_t(epoch + 1);  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return std::mt19937_64(z ^ (z >> 31));
}

inline std::vector<std::int32_t> shuffled_indices(fnn::index_t n, std::mt19937_64& rng) {
  std::vector<std::int32_t> idx(std::size_t(n), 0);
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = std::int32_t(i);
  for (std::size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng() % i]);  // Fisher-Yates
  return idx;
}

// Random shift of up to +-2 pixels in each direction (zero fill) and a horizontal flip with probability 1/2.
inline void augment_row(float* img, std::mt19937_64& rng) {
  const int dx = int(rng() % 5) - 2, dy = int(rng() % 5) - 2;
  const bool flip = (rng() & 1) != 0;
  std::array<float, 784> src;
  std::copy(img, img + 784, src.begin());
  for (int r = 0; r < 28; ++r)
    for (int c = 0; c < 28; ++c) {
      const int sr = r - dy;
      int sc = c - dx;
      if (flip) sc = 27 - sc;
      img[r * 28 + c] = (sr >= 0 && sr < 28 && sc >= 0 && sc < 28) ? src[std::size_t(sr * 28 + sc)] : 0.0f;
    }
}

// Number of mini-batches per epoch: a last batch of one sample is dropped (batch_norm needs two).
inline fnn::index_t steps_per_epoch(fnn::index_t n, fnn::index_t batch) {
  return n / batch + (n % batch >= 2 ? 1 : 0);
}

inline std::function<double(std::int64_t)> make_schedule(const options& o, std::int64_t total_steps) {
  if (o.schedule == "cosine") {
    fnn::optim::cosine_annealing_lr s(o.lr, std::max<std::int64_t>(total_steps, 1));
    return [s](std::int64_t t) { return s.lr_at(t); };
  }
  if (o.schedule == "step") {
    fnn::optim::step_lr s(o.lr, std::max<std::int64_t>(total_steps / 3, 1), 0.1);
    return [s](std::int64_t t) { return s.lr_at(t); };
  }
  if (o.schedule == "constant") return [lr = double(o.lr)](std::int64_t) { return lr; };
  throw fnn::value_error("unknown schedule '" + o.schedule + "' (cosine, constant, step)");
}

struct result {
  evaluation test;
  int epochs_run = 0;
  double seconds = 0;
};

// Progress output: a bar redrawn with \r on a terminal, a few plain lines otherwise.
class progress final {
 public:
  progress(std::FILE* out, bool tty) : out_(out), tty_(tty) {}
  void start(int epoch, int epochs, fnn::index_t steps) {
    epoch_ = epoch, epochs_ = epochs, steps_ = steps;
    t0_ = last_ = clock::now();
    next_line_ = 1;
  }
  void update(fnn::index_t step, double loss, double acc, double samples) {
    if (out_ == nullptr) return;
    const auto now = clock::now();
    const double el = seconds(t0_, now);
    const double rate = el > 0 ? samples / el : 0;
    const double eta = step > 0 ? el * double(steps_ - step) / double(step) : 0;
    if (tty_) {
      if (step != steps_ && seconds(last_, now) < 0.1) return;
      last_ = now;
      const int width = 24, filled = int(double(width) * double(step) / double(steps_));
      std::fprintf(out_, "\r\033[Kepoch %d/%d [%s%s] %ld/%ld loss %.4f acc %.4f %.0f samples/s ETA %.1fs", epoch_,
                   epochs_, std::string(std::size_t(filled), '=').c_str(),
                   std::string(std::size_t(width - filled), ' ').c_str(), long(step), long(steps_), loss, acc, rate,
                   eta);
      std::fflush(out_);
    } else if (next_line_ < 4 && step * 4 >= steps_ * next_line_) {
      ++next_line_;
      std::fprintf(out_, "epoch %d/%d  batch %ld/%ld  loss %.4f  acc %.4f  %.0f samples/s  ETA %.1fs\n", epoch_,
                   epochs_, long(step), long(steps_), loss, acc, rate, eta);
      std::fflush(out_);
    }
  }
  void finish_line() {
    if (out_ != nullptr && tty_) std::fprintf(out_, "\r\033[K");
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }
  std::FILE* out_;
  bool tty_;
  int epoch_ = 0, epochs_ = 0, next_line_ = 1;
  fnn::index_t steps_ = 0;
  clock::time_point t0_, last_;
};

namespace detail {

inline std::string meta_or(const fnn::io::metadata& m, const std::string& key, const std::string& fallback = "") {
  const auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}

// Keeps the metrics rows of epochs <= last_epoch (a resumed run rewrites what came after its checkpoint).
inline void truncate_metrics(const std::filesystem::path& path, int last_epoch) {
  std::ifstream in(path);
  std::vector<std::string> keep;
  std::string line;
  while (std::getline(in, line)) {
    if (keep.empty()) {
      keep.push_back(line);  // header
      continue;
    }
    if (std::atoi(line.c_str()) <= last_epoch) keep.push_back(line);
  }
  in.close();
  std::ofstream o(path, std::ios::trunc);
  for (const auto& l : keep) o << l << "\n";
}

inline const char* metrics_header =
    "epoch,step,lr,train_loss,train_accuracy,test_loss,test_accuracy,epoch_seconds,samples_per_second";

template <class Opt>
result train_with(const options& o, Opt opt, std::FILE* out) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  if (o.epochs < 1) throw fnn::value_error("--epochs must be >= 1, got " + std::to_string(o.epochs));
  if (o.batch < 2) throw fnn::value_error("--batch must be >= 2 (batch_norm), got " + std::to_string(o.batch));
  if (!(o.noise >= 0)) throw fnn::value_error("--noise must be >= 0");
#ifdef FNN_TRAIN_HAS_THREADS
  if (o.threads > 0) fnn::set_num_threads(o.threads);
#endif

  dataset train = load_split(o.data, fnn::io::split::train, o.subset);
  dataset test = load_split(o.data, fnn::io::split::test, o.test_subset);
  if (train.size() < 2) throw fnn::value_error("need at least 2 training samples, got " + std::to_string(train.size()));
  std::filesystem::create_directories(o.out);
  standardizer stdz;
  if (o.standardize) {
    stdz = standardizer::fit(train);
    stdz.save(o.out / standardize_file);
  }

  const fnn::index_t batch = o.batch;
  const fnn::index_t steps = steps_per_epoch(train.size(), batch);
  const auto lr_at = make_schedule(o, std::int64_t(steps) * o.epochs);
  net_t net{fnn::seed{o.seed}};
  const auto model_path = o.out / "model.safetensors";
  const auto optim_path = o.out / "optimizer.safetensors";
  const auto metrics_path = o.out / "metrics.csv";
  int first_epoch = 1;
  if (o.resume) {
    std::error_code ec;
    if (!std::filesystem::exists(optim_path, ec) || !std::filesystem::exists(model_path, ec))
      throw fnn::io_error(o.out.string() + ": nothing to resume (model.safetensors and optimizer.safetensors not found)");
    const auto meta = fnn::io::read_safetensors(optim_path).metadata;
    const std::string saved_opt = meta_or(meta, "optimizer");
    if (saved_opt != o.optimizer)
      throw fnn::value_error(optim_path.string() + ": saved by optimizer '" + saved_opt + "', this run uses '" +
                             o.optimizer + "' (pass --optimizer " + saved_opt + ")");
    for (const auto& [key, now] : {std::pair<std::string, std::string>{"seed", std::to_string(o.seed)},
                                   {"batch", std::to_string(o.batch)},
                                   {"train_samples", std::to_string(train.size())},
                                   {"epochs", std::to_string(o.epochs)},
                                   {"standardize", o.standardize ? "1" : "0"}})
      if (out != nullptr && meta_or(meta, key, now) != now)
        std::fprintf(out, "warning: resuming with %s %s, the checkpoint was made with %s: not the same run\n",
                     key.c_str(), now.c_str(), meta_or(meta, key).c_str());
    fnn::io::load_model(model_path, net);
    fnn::io::load_optimizer(optim_path, net, opt);
    first_epoch = std::atoi(meta_or(meta, "epoch", "0").c_str()) + 1;
    truncate_metrics(metrics_path, first_epoch - 1);
    if (out != nullptr)
      std::fprintf(out, "resuming %s after epoch %d (step %lld)\n", o.out.c_str(), first_epoch - 1,
                   static_cast<long long>(opt.step_count()));
  } else {
    std::ofstream(metrics_path, std::ios::trunc) << metrics_header << "\n";
  }

  if (out != nullptr && !o.resume)
    std::fprintf(out, "fnn-train: %s, %ld train / %ld test samples, %s lr %g (%s), batch %d, %d epochs\n",
                 architecture, long(train.size()), long(test.size()), o.optimizer.c_str(), double(o.lr),
                 o.schedule.c_str(), o.batch, o.epochs);

  const fnn::loss::softmax_cross_entropy ce;
  fnn::matrix<float> xb;
  std::vector<std::int32_t> yb;
  progress bar(out, out != nullptr && ::isatty(::fileno(out)));
  result r;
  for (int epoch = first_epoch; epoch <= o.epochs; ++epoch) {
    const auto t_epoch = clock::now();
    auto rng = epoch_engine(o.seed, epoch);
    const auto order = shuffled_indices(train.size(), rng);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    double loss_sum = 0, seen = 0;
    long correct = 0;
    bar.start(epoch, o.epochs, steps);
    for (fnn::index_t s = 0; s < steps; ++s) {
      const fnn::index_t first = s * batch, n = std::min(batch, train.size() - first);
      xb.resize(n, 784);
      yb.resize(std::size_t(n));
      for (fnn::index_t i = 0; i < n; ++i) {
        const auto src = order[std::size_t(first + i)];
        train.to_float(src, 1, xb.view().row(i));
        yb[std::size_t(i)] = train.y[std::size_t(src)];
        if (o.augment) augment_row(xb.view().row(i), rng);
        if (o.noise > 0)
          for (float* p = xb.view().row(i); p != xb.view().row(i) + 784; ++p) *p += o.noise * gauss(rng);
      }
      if (o.standardize) stdz.apply(xb.view());
      opt.set_lr(float(lr_at(opt.step_count())));
      const fnn::train_stats<float> st = net.train_step(xb.view(), std::span<const std::int32_t>(yb), ce, opt);
      const float loss = st.loss;
      if (!st.finite) {
        bar.finish_line();
        const std::string what = !std::isfinite(loss) ? std::string("loss is ") + (std::isnan(loss) ? "NaN" : "infinite")
                                                      : "gradient norm is " + std::to_string(st.grad_norm);
        throw diverged("training diverged at epoch " + std::to_string(epoch) + ", batch " + std::to_string(s + 1) +
                       "/" + std::to_string(steps) + " (optimizer step " + std::to_string(opt.step_count()) +
                       "): " + what +
                       "; the last good checkpoint (epoch " + std::to_string(epoch - 1) + ") is kept in " +
                       o.out.string() + ". Try a smaller --lr.");
      }
      const auto logits = net.output();
      for (fnn::index_t i = 0; i < n; ++i) correct += argmax(logits.row(i)) == yb[std::size_t(i)];
      loss_sum += double(loss) * double(n);
      seen += double(n);
      bar.update(s + 1, loss_sum / seen, double(correct) / seen, seen);
    }
    const double train_seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();
    r.test = evaluate(net, test, o.standardize ? &stdz : nullptr);
    const double epoch_seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();

    // Checkpoint first, then the metrics row: a row always has its checkpoint.
    const fnn::io::metadata model_meta{{"format", "pt"},
                                       {"fnn.architecture", architecture},
                                       {"epoch", std::to_string(epoch)},
                                       {"test_accuracy", std::to_string(r.test.accuracy)},
                                       {"standardize", o.standardize ? standardize_file : ""}};
    fnn::io::save_model(model_path, net, model_meta);
    fnn::io::save_optimizer(optim_path, net, opt,
                            {{"optimizer", o.optimizer},
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
                             {"rng", "per-epoch mt19937_64 seeded from splitmix64(seed, epoch)"}});
    char row[512];
    std::snprintf(row, sizeof row, "%d,%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f\n", epoch,
                  static_cast<long long>(opt.step_count()), lr_at(opt.step_count()), loss_sum / seen,
                  double(correct) / seen, r.test.loss, r.test.accuracy, epoch_seconds, seen / train_seconds);
    std::ofstream(metrics_path, std::ios::app) << row;
    bar.finish_line();
    if (out != nullptr) {
      std::fprintf(out, "epoch %2d/%d  train loss %.4f  train acc %.4f  test loss %.4f  test acc %.4f  %.2f s\n", epoch,
                   o.epochs, loss_sum / seen, double(correct) / seen, r.test.loss, r.test.accuracy, epoch_seconds);
      std::fflush(out);
    }
    ++r.epochs_run;
    if (o.stop_after > 0 && epoch >= o.stop_after) break;
  }
  if (r.epochs_run == 0) r.test = evaluate(net, test, o.standardize ? &stdz : nullptr);
  r.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  if (out != nullptr) {
    std::fprintf(out, "test accuracy %.4f (%ld samples)\n%s", r.test.accuracy, long(test.size()),
                 confusion_report(r.test).c_str());
    std::fprintf(out, "total time %.2f s; checkpoint %s\n", r.seconds, model_path.c_str());
  }
  return r;
}

}  // namespace detail

// Trains as the options say; prints to `out` unless o.quiet. Throws fnn's errors and fnn_train::diverged.
inline result train(const options& o, std::FILE* out = stdout) {
  if (o.quiet) out = nullptr;
  if (o.optimizer == "adamw") return detail::train_with(o, fnn::optim::adamw{{.lr = o.lr, .weight_decay = 1e-2f}}, out);
  if (o.optimizer == "adam") return detail::train_with(o, fnn::optim::adam{{.lr = o.lr}}, out);
  if (o.optimizer == "sgd") return detail::train_with(o, fnn::optim::sgd{{.lr = o.lr, .momentum = 0.9f}}, out);
  if (o.optimizer == "rmsprop") return detail::train_with(o, fnn::optim::rmsprop{{.lr = o.lr}}, out);
  throw fnn::value_error("unknown optimizer '" + o.optimizer + "' (adamw, adam, sgd, rmsprop)");
}

}  // namespace fnn_train
