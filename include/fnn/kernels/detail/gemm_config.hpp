#pragma once
// Register tile and cache blocking of the GEMM, derived from the build's SIMD target.
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <type_traits>

#include "fnn/core/config.hpp"
#include "fnn/simd/simd.hpp"

namespace fnn::kernels::detail {

// Cache sizes the blocking is tuned for (AMD Zen 5: 48 KiB L1d, 1 MiB L2 per core). Slightly smaller or larger
// caches only cost a few percent; the values are not queried at run time so the blocking, and hence the
// floating-point summation order, is the same on every machine for a given build.
inline constexpr index_t l1d_bytes = 48 * 1024;
inline constexpr index_t l2_bytes = 1024 * 1024;

template <class T>
struct gemm_config {
  // The vector type of the micro-kernel: a SIMD register, or T itself on the scalar fallback.
  using vec = std::conditional_t<simd::enabled, simd::batch<T>, T>;
  static constexpr index_t w = static_cast<index_t>(simd::lanes_v<vec>);
  static constexpr int registers = simd::enabled ? simd::vector_registers<simd::arch> : 16;

  // Accumulators: mr rows x nv registers. With 32 registers, 8 x 3 (24 accumulators + 3 B loads + 1 broadcast):
  // on Zen 5 (best-of-20 CPU time, 256x1024x1024 / 1024^3, three runs each on a shared machine) it gave
  // 177-182 / 170-187 GFLOP/s against 169-174 / 145-163 for 14 x 2, 161-176 / 158-170 for 12 x 2 and
  // 175-184 / 168-187 for 6 x 4. With 16 registers 6 x 2 (12 + 2 + 1). The scalar fallback uses 4 x 4 values.
  static constexpr index_t nv = simd::enabled ? (registers >= 32 ? 3 : 2) : 4;
  static constexpr index_t mr = simd::enabled ? (registers >= 32 ? 8 : 6) : 4;
  static constexpr index_t nr = nv * w;

  // kc: the depth of one block of k. Every block ends with a pass over the C tile (load, add, store), so deeper
  // blocks mean less C traffic; the packed B sliver (kc x nr) then outgrows L1 and streams from L2, which
  // Zen 5 sustains (3 vector loads per 24 FMAs is 16 B/cycle of its 64). Best-of-30 CPU time of the
  // 256x1024x1024 / 256x784x1024 products, alternating builds on a shared machine: 185-191 / 188-194 GFLOP/s
  // at kc = 168 (the L1-sized sliver), 192-199 / 191-197 at 256, 193-201 / 195-202 at 512.
  // k is cut into ceil(k / kc) blocks of equal depth (k_block), so there is no short tail block.
  // mc: one packed A block (mc x kc) takes ~1/2 of L2. nc: the packed B panel lives in L3.
  static constexpr index_t kc = simd::enabled ? 512 : 256;
  static constexpr index_t mc = std::max<index_t>(mr, (l2_bytes / 2) / (kc * index_t(sizeof(T))) / mr * mr);
  static constexpr index_t nc = std::max<index_t>(nr, 4096 / nr * nr);

  // Depth of the k blocks for a product of depth k: the blocks are as even as multiples of 8 allow (at least 1).
  static constexpr index_t k_block(index_t k) {
    const index_t blocks = std::max<index_t>(1, (k + kc - 1) / kc);
    return std::max<index_t>(1, std::min(kc, ((k + blocks - 1) / blocks + 7) / 8 * 8));
  }
};

// A growable, 64-byte aligned scratch buffer; one per thread per element type, reused across calls.
template <class T>
class scratch final {
 public:
  T* get(index_t count) {
    if (count > capacity_) {
      const std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(T) + buffer_alignment - 1) /
                                buffer_alignment * buffer_alignment;
      data_.reset(static_cast<T*>(std::aligned_alloc(buffer_alignment, bytes)));
      if (!data_) throw std::bad_alloc();
      capacity_ = count;
    }
    return data_.get();
  }

 private:
  struct free_deleter {
    void operator()(T* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<T, free_deleter> data_;
  index_t capacity_ = 0;
};

template <class T>
inline scratch<T>& thread_scratch_a() {
  thread_local scratch<T> s;
  return s;
}
template <class T>
inline scratch<T>& thread_scratch_b() {
  thread_local scratch<T> s;
  return s;
}

}  // namespace fnn::kernels::detail
