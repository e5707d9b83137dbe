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
#include "fnn/optim/optim.hpp"
#include "run_dir.hpp"
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
  // Checkpoints of earlier fnn-train versions kept the statistics in a side file (see standardize_path_of).
  static standardizer load(const std::filesystem::path& path) {
    const auto f = fnn::io::read_safetensors(path);
    return {f.values<float>("mean", {784}), f.values<float>("std", {784})};
  }
  // As checkpoint metadata ("fnn.standardize.mean" / ".std": 784 numbers each, exact as %.9g), so that a model
  // file is complete on its own and fnn-eval needs no side file.
  static std::string to_text(const std::vector<float>& v) {
    std::string s;
    char b[32];
    for (float x : v) {
      std::snprintf(b, sizeof b, "%s%.9g", s.empty() ? "" : ",", double(x));
      s += b;
    }
    return s;
  }
  static std::vector<float> from_text(const std::filesystem::path& file, const std::string& key, const std::string& s) {
    std::vector<float> v;
    for (std::size_t at = 0; at <= s.size() && !s.empty();) {
      const std::size_t end = std::min(s.find(',', at), s.size());
      const std::string item = s.substr(at, end - at);
      char* stop = nullptr;
      const float x = std::strtof(item.c_str(), &stop);
      if (item.empty() || *stop != '\0' || !std::isfinite(x) || (key.ends_with("std") && !(x > 0)))
        throw fnn::io_error(file.string() + ": __metadata__ \"" + key + "\" item " + std::to_string(v.size()) +
                            " is not a valid number: \"" + item.substr(0, 30) + "\"");
      v.push_back(x);
      at = end + 1;
    }
    if (v.size() != 784)
      throw fnn::io_error(file.string() + ": __metadata__ \"" + key + "\" holds " + std::to_string(v.size()) +
                          " numbers, expected 784");
    return v;
  }
};

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
  if (m.count("fnn.standardize.mean") || m.count("fnn.standardize.std")) {
    if (!m.count("fnn.standardize.mean") || !m.count("fnn.standardize.std"))
      throw fnn::io_error(f.path.string() + ": __metadata__ has only one of fnn.standardize.mean / .std");
    return standardizer{standardizer::from_text(f.path, "fnn.standardize.mean", m.at("fnn.standardize.mean")),
                        standardizer::from_text(f.path, "fnn.standardize.std", m.at("fnn.standardize.std"))};
  }
  const auto it = m.find("standardize");
  if (it == m.end() || it->second.empty()) return std::nullopt;
  return standardizer::load(standardize_path_of(f.path, it->second));
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
inline void write_metrics(const std::filesystem::path& path, const std::string& rows) {
  fnn::io::write_file_atomic(path, std::string(metrics_header) + "\n" + rows);
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

// What model.safetensors says of itself (fnn-eval reads "standardize"; torch ignores it all).
inline fnn::io::metadata model_metadata(const options& o, int epoch, const std::string& test_accuracy,
                                        const standardizer& stdz) {
  fnn::io::metadata m{{"format", "pt"},
                      {"fnn.architecture", architecture},
                      {"fnn.layers", fnn::layers_text<net_t>()},
                      {"epoch", std::to_string(epoch)},
                      {"test_accuracy", test_accuracy}};
  if (o.standardize) {
    m["fnn.standardize.mean"] = standardizer::to_text(stdz.mean);
    m["fnn.standardize.std"] = standardizer::to_text(stdz.std);
  }
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

template <class Opt>
result train_with(const options& o, Opt opt, std::FILE* out) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  if (o.epochs < 1) throw fnn::value_error("--epochs must be >= 1, got " + std::to_string(o.epochs));
  if (o.batch < 2) throw fnn::value_error("--batch must be >= 2 (batch_norm), got " + std::to_string(o.batch));
  if (!(o.noise >= 0) || !std::isfinite(o.noise)) throw fnn::value_error("--noise must be a finite number >= 0");
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) throw fnn::value_error("--lr must be a finite number >= 0");
#ifdef FNN_TRAIN_HAS_THREADS
  if (o.threads > 0) fnn::set_num_threads(o.threads);
#endif

  // The output directory first: a read-only or busy --out is reported before minutes of loading and training.
  std::error_code ec;
  std::filesystem::create_directories(o.out, ec);
  if (ec) throw fnn::io_error(o.out.string() + ": cannot create the output directory: " + ec.message());
  const run_lock lock(o.out);
  remove_stale_temporaries(o.out);
  const auto state_path = o.out / "state.safetensors";
  const auto model_path = o.out / "model.safetensors";
  const auto metrics_path = o.out / "metrics.csv";

  dataset train = load_split(o.data, fnn::io::split::train, o.subset);
  dataset test = load_split(o.data, fnn::io::split::test, o.test_subset);
  if (train.size() < 2) throw fnn::value_error("need at least 2 training samples, got " + std::to_string(train.size()));
  standardizer stdz;
  if (o.standardize) stdz = standardizer::fit(train);

  const fnn::index_t batch = o.batch;
  const fnn::index_t steps = steps_per_epoch(train.size(), batch);
  const auto lr_at = make_schedule(o, std::int64_t(steps) * o.epochs);
  net_t net{fnn::seed{o.seed}};
  int first_epoch = 1;
  int last_good = 0;      // the epoch of the training state on disk (0: none)
  std::string rows;       // metrics.csv without its header; kept in the training state too
  if (o.resume) {
    if (!std::filesystem::exists(state_path, ec)) {
      if (std::filesystem::exists(o.out / "optimizer.safetensors", ec))
        throw fnn::io_error(o.out.string() +
                            ": holds model.safetensors + optimizer.safetensors of an older fnn-train, which cannot be "
                            "checked for consistency; start a new run");
      throw fnn::io_error(o.out.string() + ": nothing to resume (no state.safetensors: no epoch was completed)");
    }
    const auto file = fnn::io::read_safetensors(state_path);
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
    first_epoch = int(epoch) + 1;
    last_good = int(epoch);
    rows = meta_or(meta, "metrics");
    // The exports follow the state: a crash between the state's rename and theirs left them one epoch behind.
    fnn::io::save_model(model_path, net, model_metadata(o, int(epoch), meta_or(meta, "test_accuracy"), stdz));
    write_metrics(metrics_path, rows);
    if (out != nullptr)
      std::fprintf(out, "resuming %s after epoch %d (step %lld)\n", o.out.c_str(), first_epoch - 1,
                   static_cast<long long>(opt.step_count()));
  } else {
    if (std::filesystem::exists(state_path, ec) || std::filesystem::exists(model_path, ec)) {
      if (out != nullptr)
        std::fprintf(out, "warning: %s holds an earlier run, which this one replaces\n"
                          "  (--resume would continue it; --out names another directory)\n", o.out.c_str());
      std::filesystem::remove(state_path, ec);  // a crash before epoch 1 must not resume the earlier run
    }
    write_metrics(metrics_path, rows);
  }

  if (out != nullptr && !o.resume) {
    // Lines of at most 80 columns.
    std::fprintf(out, "fnn-train: %s\n  %ld train / %ld test samples, %s lr %g (%s), batch %d, %d epochs\n",
                 architecture, long(train.size()), long(test.size()), o.optimizer.c_str(), double(o.lr),
                 o.schedule.c_str(), o.batch, o.epochs);
    std::fprintf(out, "initial loss %.4f (untrained, %d classes: expect about ln %d = %.4f)\n",
                 initial_loss(net, train, o.standardize ? &stdz : nullptr), classes, classes, std::log(double(classes)));
  }

  const fnn::loss::softmax_cross_entropy ce;
  fnn::matrix<float> xb;
  std::vector<std::int32_t> yb;
  progress bar(out, out != nullptr && ::isatty(::fileno(out)));
  bar.start_run(std::int64_t(steps) * (o.epochs - first_epoch + 1));
  const auto good_text = [&] {
    return last_good > 0 ? "the last good checkpoint (epoch " + std::to_string(last_good) + ") is kept in " +
                               o.out.string() + "."
                         : std::string("no checkpoint was written (the run diverged in its first epoch).");
  };
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
      const double lr = lr_at(opt.step_count());
      opt.set_lr(float(lr));
      const fnn::train_stats<float> st = net.train_step(xb.view(), std::span<const std::int32_t>(yb), ce, opt);
      const float loss = st.loss;
      if (!st.finite) {
        bar.finish_line();
        const std::string what = !std::isfinite(loss) ? std::string("loss is ") + (std::isnan(loss) ? "NaN" : "infinite")
                                                      : "gradient norm is " + std::to_string(st.grad_norm);
        throw diverged("training diverged at epoch " + std::to_string(epoch) + ", batch " + std::to_string(s + 1) +
                       "/" + std::to_string(steps) + " (optimizer step " + std::to_string(opt.step_count()) +
                       "): " + what + "; " + good_text() + " Try a smaller --lr.");
      }
      const auto logits = net.output();
      for (fnn::index_t i = 0; i < n; ++i) correct += argmax(logits.row(i)) == yb[std::size_t(i)];
      loss_sum += double(loss) * double(n);
      seen += double(n);
      bar.update(s + 1, loss_sum / seen, double(correct) / seen, seen, lr);
    }
    // The loss is computed before each update, so the last update of the epoch is checked here: nothing
    // non-finite is ever written.
    if (const std::string bad = fnn::io::first_non_finite(net, opt); !bad.empty()) {
      bar.finish_line();
      throw diverged("training diverged at epoch " + std::to_string(epoch) + " (optimizer step " +
                     std::to_string(opt.step_count()) + "): its updates left " + bad + "; " + good_text() +
                     " Try a smaller --lr.");
    }
    const double train_seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();
    r.test = evaluate(net, test, o.standardize ? &stdz : nullptr);
    const double epoch_seconds = std::chrono::duration<double>(clock::now() - t_epoch).count();
    char row[512];
    std::snprintf(row, sizeof row, "%d,%lld,%.6g,%.6f,%.6f,%.6f,%.6f,%.3f,%.1f\n", epoch,
                  static_cast<long long>(opt.step_count()), lr_at(opt.step_count()), loss_sum / seen,
                  double(correct) / seen, r.test.loss, r.test.accuracy, epoch_seconds, seen / train_seconds);
    rows += row;

    // The training state is the one commit point: its rename makes the epoch durable. The model export and
    // metrics.csv follow it (and are rewritten from it on --resume if a crash came in between).
    fnn::io::save_training_state(state_path, net, opt,
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
                                  {"metrics", rows},
                                  {"test_accuracy", std::to_string(r.test.accuracy)},
                                  {"rng", "per-epoch mt19937_64 seeded from splitmix64(seed, epoch)"}});
    last_good = epoch;
    crash_point("state");
    fnn::io::save_model(model_path, net, model_metadata(o, epoch, std::to_string(r.test.accuracy), stdz));
    crash_point("model");
    write_metrics(metrics_path, rows);
    crash_point("metrics");
    bar.finish_line();
    if (out != nullptr) {
      std::fprintf(out, "epoch %2d/%d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.2f s\n", epoch,
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
    std::fprintf(out, "total time %.2f s\nmodel: %s\n", r.seconds, model_path.c_str());
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
