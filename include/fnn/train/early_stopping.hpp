#pragma once
// Early stopping on a validation metric, as Keras' EarlyStopping: an epoch improves when its metric beats the
// best so far by more than min_delta (lower for a loss, higher for an accuracy); training stops after
// `patience` epochs in a row without improvement. The caller keeps the best checkpoint when update() says so.
// Its whole state is three numbers, saved with a training state so that a resumed run stops where an
// uninterrupted one would (write_metadata / read_metadata).
//
//   fnn::train::early_stopping stop{{.patience = 5, .min_delta = 1e-4, .goal = fnn::train::goal::minimize}};
//   if (stop.update(val_loss)) save_best();
//   if (stop.should_stop()) break;
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>

#include "fnn/core/errors.hpp"
#include "fnn/io/safetensors.hpp"

namespace fnn::train {

enum class goal { minimize, maximize };

struct early_stopping_options {
  int patience = 5;       // epochs without improvement before stopping (0: stop at the first one)
  double min_delta = 0;   // an improvement must exceed this (absolute)
  goal direction = goal::minimize;
};

class early_stopping final {
 public:
  early_stopping() = default;
  explicit early_stopping(early_stopping_options o) : o_(o) {
    if (o.patience < 0) throw value_error("early_stopping: patience must be >= 0, got " + std::to_string(o.patience));
    if (!(o.min_delta >= 0)) throw value_error("early_stopping: min_delta must be >= 0");
  }

  // Records the metric of the next epoch; true when it is the best so far (keep this checkpoint). A NaN never
  // improves.
  bool update(double metric) {
    ++epochs_;
    const bool better = !std::isnan(metric) &&
                        (best_epoch_ == 0 || (o_.direction == goal::minimize ? metric < best_ - o_.min_delta
                                                                             : metric > best_ + o_.min_delta));
    if (better) {
      best_ = metric, best_epoch_ = epochs_, bad_ = 0;
    } else {
      ++bad_;
    }
    return better;
  }
  // After `patience` epochs without improvement (at least one: patience 0 stops at the first).
  bool should_stop() const noexcept { return bad_ >= std::max(o_.patience, 1); }
  double best() const noexcept { return best_; }
  int best_epoch() const noexcept { return best_epoch_; }  // 1-based, 0: none yet
  int epochs() const noexcept { return epochs_; }
  int epochs_without_improvement() const noexcept { return bad_; }
  const early_stopping_options& options() const noexcept { return o_; }

  void write_metadata(io::metadata& m, const std::string& prefix = "fnn.early_stopping") const {
    char b[64];
    std::snprintf(b, sizeof b, "%.17g", best_);
    m[prefix + ".best"] = b;
    m[prefix + ".best_epoch"] = std::to_string(best_epoch_);
    m[prefix + ".epochs"] = std::to_string(epochs_);
    m[prefix + ".bad_epochs"] = std::to_string(bad_);
  }
  void read_metadata(const std::filesystem::path& file, const io::metadata& m,
                     const std::string& prefix = "fnn.early_stopping") {
    const auto get = [&](const std::string& key) {
      const auto it = m.find(prefix + "." + key);
      if (it == m.end()) throw io_error(file.string() + ": __metadata__ has no \"" + prefix + "." + key + "\"");
      return it->second;
    };
    const auto integer = [&](const std::string& key) {
      const std::string s = get(key);
      char* end = nullptr;
      const long v = std::strtol(s.c_str(), &end, 10);
      if (s.empty() || *end != '\0' || v < 0 || v > (1 << 30))
        throw io_error(file.string() + ": __metadata__ \"" + prefix + "." + key + "\" is not a count: \"" + s.substr(0, 30) + "\"");
      return int(v);
    };
    const std::string b = get("best");
    char* end = nullptr;
    const double best = std::strtod(b.c_str(), &end);
    const int best_epoch = integer("best_epoch"), epochs = integer("epochs"), bad = integer("bad_epochs");
    if (b.empty() || *end != '\0' || best_epoch > epochs || bad > epochs || bad != epochs - best_epoch)
      throw io_error(file.string() + ": __metadata__ " + prefix + ".* is inconsistent");
    best_ = best, best_epoch_ = best_epoch, epochs_ = epochs, bad_ = bad;
  }

 private:
  early_stopping_options o_;
  double best_ = std::numeric_limits<double>::quiet_NaN();
  int best_epoch_ = 0, epochs_ = 0, bad_ = 0;
};

}  // namespace fnn::train
