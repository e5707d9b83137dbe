#pragma once
// Classification metrics over logits or probabilities (rows = samples): argmax, accuracy, a confusion matrix.
//
//   fnn::train::confusion_matrix cm(10);
//   cm.add(logits, labels);
//   double acc = cm.accuracy();
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/core/tensor.hpp"

namespace fnn::train {

// The index of the largest value (the first of equal ones, as torch.argmax on CPU and numpy.argmax).
template <class T>
index_t argmax(std::span<const T> row) {
  if (row.empty()) throw shape_error("argmax of an empty row");
  return index_t(std::max_element(row.begin(), row.end()) - row.begin());
}

inline void check_labels(const_matrix_view<float> scores, std::span<const std::int32_t> labels) {
  if (index_t(labels.size()) != scores.rows())
    throw shape_error("metrics: " + std::to_string(scores.rows()) + " rows of scores, " +
                      std::to_string(labels.size()) + " labels");
}

inline double accuracy(const_matrix_view<float> scores, std::span<const std::int32_t> labels) {
  check_labels(scores, labels);
  if (labels.empty()) return 0;
  long correct = 0;
  for (index_t i = 0; i < scores.rows(); ++i)
    correct += argmax(std::span<const float>(scores.row(i), std::size_t(scores.cols()))) == labels[std::size_t(i)];
  return double(correct) / double(labels.size());
}

class confusion_matrix final {
 public:
  explicit confusion_matrix(int classes) : classes_(classes), counts_(std::size_t(classes) * std::size_t(classes), 0) {
    if (classes < 1) throw value_error("confusion_matrix: needs >= 1 class, got " + std::to_string(classes));
  }
  void add(int truth, int predicted) {
    if (truth < 0 || truth >= classes_ || predicted < 0 || predicted >= classes_)
      throw value_error("confusion_matrix: class " + std::to_string(truth < 0 || truth >= classes_ ? truth : predicted) +
                        " is outside [0, " + std::to_string(classes_) + ")");
    ++counts_[std::size_t(truth) * std::size_t(classes_) + std::size_t(predicted)];
  }
  void add(const_matrix_view<float> scores, std::span<const std::int32_t> labels) {
    check_labels(scores, labels);
    if (scores.cols() != classes_)
      throw shape_error("confusion_matrix of " + std::to_string(classes_) + " classes, scores have " +
                        std::to_string(scores.cols()) + " columns");
    for (index_t i = 0; i < scores.rows(); ++i)
      add(labels[std::size_t(i)], int(argmax(std::span<const float>(scores.row(i), std::size_t(classes_)))));
  }
  // [truth][predicted]
  long operator()(int truth, int predicted) const {
    return counts_.at(std::size_t(truth) * std::size_t(classes_) + std::size_t(predicted));
  }
  int classes() const noexcept { return classes_; }
  long total() const {
    long t = 0;
    for (long v : counts_) t += v;
    return t;
  }
  double accuracy() const {
    long d = 0;
    for (int c = 0; c < classes_; ++c) d += (*this)(c, c);
    return total() ? double(d) / double(total()) : 0.0;
  }
  // Recall of class c (its row's diagonal share); 0 for a class without samples.
  double class_accuracy(int c) const {
    long row = 0;
    for (int p = 0; p < classes_; ++p) row += (*this)(c, p);
    return row ? double((*this)(c, c)) / double(row) : 0.0;
  }
  long class_total(int c) const {
    long row = 0;
    for (int p = 0; p < classes_; ++p) row += (*this)(c, p);
    return row;
  }

 private:
  int classes_;
  std::vector<long> counts_;
};

}  // namespace fnn::train
