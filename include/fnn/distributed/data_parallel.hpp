#pragma once
// Data-parallel training of one typed network on N MPI ranks, as PyTorch's DistributedDataParallel does it:
// every rank holds the same parameters, runs forward and backward on its own slice of the global batch, and
// the gradients are averaged over the ranks before each rank takes the same optimizer step.
//
//   fnn::distributed::environment mpi(argc, argv);
//   fnn::distributed::communicator world;
//   net_t net{fnn::seed{42}};
//   fnn::distributed::data_parallel dp(net, world);          // rank 0's parameters and statistics everywhere
//   auto st = dp.train_step(x_local, labels_local, loss, opt);  // st.loss: the mean over the global batch
//
// Gradients travel in buckets (DDP's default 25 MB) in backward order: as soon as a fused stage's backward
// has finished, every bucket whose parameters are all final starts its MPI_Iallreduce, and the remaining
// stages' backward runs while it travels. The sums are then scaled by 1/N, so the gradient is the mean over
// the global batch when every rank has the same local batch size. With equal-size slices of one global
// batch, N ranks give the single-process gradient up to the summation order of the products (float
// tolerance) -- except through batch norm, whose training statistics here are per rank (as in DDP without
// SyncBatchNorm).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "fnn/distributed/communicator.hpp"
#include "fnn/network/sequential.hpp"

namespace fnn::distributed {

struct data_parallel_options final {
  std::size_t bucket_bytes = std::size_t(25) << 20;  // PyTorch DDP's bucket_cap_mb = 25
  bool overlap = true;  // false: one all-reduce per bucket after the whole backward (the plain reference)
  // After every step, rank 0's running statistics and counters are copied to all ranks (DDP's
  // broadcast_buffers=True), so that every rank holds the state rank 0 checkpoints.
  bool broadcast_buffers = true;
};

template <class Net>
class data_parallel final {
 public:
  using T = typename Net::value_type;

  data_parallel(Net& net, communicator& comm, data_parallel_options options = {})
      : net_(net), comm_(comm), options_(options) {
    broadcast_state();
    plan_buckets();
  }

  Net& network() noexcept { return net_; }
  communicator& comm() noexcept { return comm_; }
  std::size_t bucket_count() const noexcept { return buckets_.size(); }

  // Forward and backward on this rank's slice, gradients averaged over all ranks (overlapped with backward),
  // then the optimizer step. The reported loss is the mean of the ranks' losses and grad_norm the norm of the
  // averaged gradient: the same numbers on every rank.
  template <class Loss, class Target, class Optimizer>
  train_stats<T> train_step(const_matrix_view<T> x, const Target& target, const Loss& loss, Optimizer& opt) {
    train_stats<T> st;
    st.loss = compute_gradients(x, target, loss);
    st.grad_norm = net_.grad_norm();
    st.finite = std::isfinite(st.loss) && std::isfinite(st.grad_norm);
    opt.step(net_);
    if (options_.broadcast_buffers) broadcast_buffers();
    return st;
  }

  // The gradient half of train_step: afterwards every rank holds the averaged gradients. Returns the
  // mean loss over the ranks.
  template <class Loss, class Target>
  T compute_gradients(const_matrix_view<T> x, const Target& target, const Loss& loss) {
    next_bucket_ = 0;
    T local = options_.overlap ? net_.compute_gradients_streamed(x, target, loss, mode::train,
                                                                 [&](index_t first) { on_stage_done(first); })
                               : net_.compute_gradients(x, target, loss, mode::train);
    start_ready_buckets(0);  // whatever is left (all buckets when not overlapping)
    finish_buckets();
    const double mean = comm_.sum(static_cast<double>(local)) / comm_.size();
    return static_cast<T>(mean);
  }

  // Parameters, running statistics and counters of rank 0 copied to every rank (done at construction;
  // call again after loading a checkpoint on rank 0 only).
  void broadcast_state() {
    net_.for_each_parameter([&](parameter_ref<T>& p) { comm_.broadcast(p.value, 0); });
    broadcast_buffers();
  }
  void broadcast_buffers() {
    net_.for_each_buffer([&](buffer_ref<T>& b) {
      if (b.counter) comm_.broadcast(std::span<std::int64_t>(b.counter, 1), 0);
      else comm_.broadcast(b.value, 0);
    });
  }

  // A 64-bit FNV-1a hash of every parameter and buffer byte of this rank.
  std::uint64_t state_checksum() { return state_checksum_of(net_); }
  static std::uint64_t state_checksum_of(Net& net) {
    std::uint64_t h = 1469598103934665603ull;
    const auto mix = [&](const void* data, std::size_t bytes) {
      const auto* p = static_cast<const unsigned char*>(data);
      for (std::size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
    };
    net.for_each_parameter([&](parameter_ref<T>& p) { mix(p.value.data(), p.value.size_bytes()); });
    net.for_each_buffer([&](buffer_ref<T>& b) {
      if (b.counter) mix(b.counter, sizeof(*b.counter));
      else mix(b.value.data(), b.value.size_bytes());
    });
    return h;
  }
  // Throws distributed_error naming the first rank whose parameters or statistics differ from rank 0's.
  void check_replicas_identical() {
    const auto all = comm_.allgather(state_checksum());
    for (std::size_t r = 1; r < all.size(); ++r)
      if (all[r] != all[0])
        throw distributed_error("rank " + std::to_string(r) + "'s parameters or statistics differ from rank 0's " +
                                "(state checksum " + std::to_string(all[r]) + " vs " + std::to_string(all[0]) + ")");
  }

 private:
  struct slot final {
    std::span<T> grad;
    index_t module;
  };
  struct bucket final {
    std::vector<slot> slots;
    std::vector<T> flat;
    index_t lowest_module = 0;  // ready once the stage holding this module has finished backward
    request pending;
  };

  // Buckets in backward order (last layer first), each up to bucket_bytes (at least one parameter).
  void plan_buckets() {
    std::vector<slot> all;
    net_.for_each_parameter([&](parameter_ref<T>& p) { all.push_back({p.grad, p.module}); });
    std::stable_sort(all.begin(), all.end(), [](const slot& a, const slot& b) { return a.module > b.module; });
    const std::size_t cap = std::max<std::size_t>(options_.bucket_bytes / sizeof(T), 1);
    for (const slot& s : all) {
      if (buckets_.empty() || (buckets_.back().flat.size() + s.grad.size() > cap && !buckets_.back().slots.empty()))
        buckets_.emplace_back();
      bucket& b = buckets_.back();
      b.slots.push_back(s);
      b.flat.resize(b.flat.size() + s.grad.size());
      b.lowest_module = s.module;
    }
  }

  void on_stage_done(index_t first_layer) {
    start_ready_buckets(first_layer);
    for (std::size_t i = 0; i < next_bucket_; ++i) buckets_[i].pending.test();  // let MPI progress them
  }

  void start_ready_buckets(index_t first_final_layer) {
    while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].lowest_module >= first_final_layer) {
      bucket& b = buckets_[next_bucket_++];
      std::size_t at = 0;
      for (const slot& s : b.slots) {
        std::copy(s.grad.begin(), s.grad.end(), b.flat.begin() + std::ptrdiff_t(at));
        at += s.grad.size();
      }
      b.pending = comm_.iallreduce_sum(std::span<T>(b.flat));
    }
  }

  void finish_buckets() {
    const T scale = T(1) / T(comm_.size());
    for (bucket& b : buckets_) {
      b.pending.wait();
      std::size_t at = 0;
      for (const slot& s : b.slots) {
        for (std::size_t i = 0; i < s.grad.size(); ++i) s.grad[i] = b.flat[at + i] * scale;
        at += s.grad.size();
      }
    }
  }

  Net& net_;
  communicator& comm_;
  data_parallel_options options_;
  std::vector<bucket> buckets_;
  std::size_t next_bucket_ = 0;
};

}  // namespace fnn::distributed
