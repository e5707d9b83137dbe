#pragma once
// Aligned owning buffers and row-major matrix views. Feature sizes live in types elsewhere; here
// everything is run-time so kernels and I/O can share one vocabulary.
#include <cassert>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "fnn/core/config.hpp"
#include "fnn/core/errors.hpp"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fnn {

template <class T, std::size_t Align = buffer_alignment>
struct aligned_allocator {
  using value_type = T;
  static constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;
  static constexpr std::size_t huge_page_threshold = std::size_t{4} << 20;
  template <class U>
  struct rebind {
    using other = aligned_allocator<U, Align>;
  };
  aligned_allocator() noexcept = default;
  template <class U>
  explicit aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n == 0) return nullptr;
    // No object may exceed PTRDIFF_MAX bytes; bounding n by it (less the rounding below) also lets GCC see
    // that the rounded sizes passed to aligned_alloc fit (-Walloc-size-larger-than at -O3 otherwise).
    constexpr std::size_t max_bytes = std::size_t(std::numeric_limits<std::ptrdiff_t>::max()) - huge_page_bytes;
    if (n > max_bytes / sizeof(T)) throw std::bad_alloc{};
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= huge_page_threshold) {
      // Large arrays (a data set, big weight and optimizer-state buffers) on transparent huge pages where the
      // kernel offers them on request: first touch then faults once per 2 MiB instead of once per 4 KiB. On
      // this project's VM, zero-filling the 188 MB Fashion-MNIST image matrix took 0.55 s with 4 KiB pages.
      const std::size_t rounded = (bytes + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
      void* p = std::aligned_alloc(huge_page_bytes, rounded);
      if (p == nullptr) throw std::bad_alloc{};
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure leaves ordinary pages
#endif
      return static_cast<T*>(p);
    }
    void* p = std::aligned_alloc(Align, (bytes + Align - 1) / Align * Align);
    if (p == nullptr) throw std::bad_alloc{};
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { std::free(p); }
  template <class U>
  bool operator==(const aligned_allocator<U, Align>&) const noexcept {
    return true;
  }
};

// A contiguous, 64-byte aligned array: parameters, gradients, optimizer state, activations.
template <class T>
using buffer = std::vector<T, aligned_allocator<T>>;

// A row-major view of rows x cols elements with a leading dimension (distance between rows).
template <class T>
class matrix_view {
 public:
  constexpr matrix_view() = default;
  constexpr matrix_view(T* data, index_t rows, index_t cols) : matrix_view(data, rows, cols, cols) {}
  constexpr matrix_view(T* data, index_t rows, index_t cols, index_t ld)
      : data_(data), rows_(rows), cols_(cols), ld_(ld) {}
  // A mutable view converts to a view of const.
  template <class U>
    requires std::is_same_v<const U, T>
  constexpr matrix_view(matrix_view<U> other) : matrix_view(other.data(), other.rows(), other.cols(), other.ld()) {}

  constexpr T* data() const noexcept { return data_; }
  constexpr index_t rows() const noexcept { return rows_; }
  constexpr index_t cols() const noexcept { return cols_; }
  constexpr index_t ld() const noexcept { return ld_; }
  constexpr index_t size() const noexcept { return rows_ * cols_; }
  constexpr bool contiguous() const noexcept { return ld_ == cols_; }
  constexpr T* row(index_t r) const noexcept { return data_ + r * ld_; }
  constexpr T& operator()(index_t r, index_t c) const noexcept {
    assert(r >= 0 && r < rows_ && c >= 0 && c < cols_);
    return data_[r * ld_ + c];
  }
  // Rows [first, first + count): a mini-batch of a data set. A range past the last row (the last, partial
  // batch of an epoch) is a shape_error, not a read past the end.
  constexpr matrix_view rows_slice(index_t first, index_t count) const {
    if (first < 0 || count < 0 || first > rows_ || count > rows_ - first)
      throw shape_error("rows_slice(first " + std::to_string(first) + ", count " + std::to_string(count) +
                        ") of a view with " + std::to_string(rows_) + " rows");
    return {data_ + first * ld_, count, cols_, ld_};
  }

 private:
  T* data_ = nullptr;
  index_t rows_ = 0;
  index_t cols_ = 0;
  index_t ld_ = 0;
};

template <class T>
using const_matrix_view = matrix_view<const T>;

// An owning, aligned, row-major matrix whose row count can change (the batch dimension).
template <class T>
class matrix {
 public:
  matrix() = default;
  matrix(index_t rows, index_t cols) { resize(rows, cols); }
  matrix(index_t rows, index_t cols, std::span<const T> values) : matrix(rows, cols) {
    if (static_cast<index_t>(values.size()) != rows * cols)
      throw shape_error("matrix of " + std::to_string(rows) + "x" + std::to_string(cols) + " needs " +
                        std::to_string(rows * cols) + " values, got " + std::to_string(values.size()));
    std::copy(values.begin(), values.end(), data_.begin());
  }

  // Keeps capacity, so a network that sees the same batch size again does not allocate.
  void resize(index_t rows, index_t cols) {
    rows_ = rows;
    cols_ = cols;
    data_.resize(static_cast<std::size_t>(rows * cols));
  }

  T* data() noexcept { return data_.data(); }
  const T* data() const noexcept { return data_.data(); }
  index_t rows() const noexcept { return rows_; }
  index_t cols() const noexcept { return cols_; }
  index_t size() const noexcept { return rows_ * cols_; }
  T* row(index_t r) noexcept { return data_.data() + r * cols_; }
  const T* row(index_t r) const noexcept { return data_.data() + r * cols_; }
  T& operator()(index_t r, index_t c) noexcept { return view()(r, c); }
  const T& operator()(index_t r, index_t c) const noexcept { return view()(r, c); }
  std::span<T> flat() noexcept { return {data_.data(), data_.size()}; }
  std::span<const T> flat() const noexcept { return {data_.data(), data_.size()}; }

  matrix_view<T> view() noexcept { return {data_.data(), rows_, cols_}; }
  const_matrix_view<T> view() const noexcept { return {data_.data(), rows_, cols_}; }
  operator matrix_view<T>() noexcept { return view(); }
  operator const_matrix_view<T>() const noexcept { return view(); }

 private:
  buffer<T> data_;
  index_t rows_ = 0;
  index_t cols_ = 0;
};

}  // namespace fnn
