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
// tolerance). Batch norm's training statistics are per rank by default (DDP without SyncBatchNorm); with
// options.sync_batch_norm they are the global batch's, and the single-process result is matched through batch
// norm too.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
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
  // SyncBatchNorm: every batch_norm layer (fused or not) normalizes with the statistics of the global batch,
  // merged across ranks, and its backward uses the global sums. Off by default, as in DDP.
  bool sync_batch_norm = false;
  // Every this many steps (0: never), check_replicas_identical() after the step: a cheap checksum of every
  // parameter and statistic, gathered and compared, that turns a silent divergence of the replicas into an
  // error naming the rank.
  int check_replicas_every = 0;
};

// Batch-norm statistics over MPI. merge_moments gathers every rank's (count, mean, biased variance) and merges
// them in rank order with Chan et al.'s pairwise formula (the one the fused GEMM epilogue uses across row
// tiles), so every rank computes the same bits; sums are all-reduced in double.
class mpi_batch_statistics final : public batch_statistics_sync {
 public:
  explicit mpi_batch_statistics(communicator& comm) : comm_(comm) {}

  index_t merge_moments(index_t n, std::span<double> mean, std::span<double> var) override {
    const std::size_t f = mean.size(), stride = 1 + 2 * f;
    local_.resize(stride);
    local_[0] = double(n);
    std::copy(mean.begin(), mean.end(), local_.begin() + 1);
    std::copy(var.begin(), var.end(), local_.begin() + 1 + std::ptrdiff_t(f));
    all_.resize(stride * std::size_t(comm_.size()));
    detail::check(MPI_Allgather(local_.data(), int(stride), MPI_DOUBLE, all_.data(), int(stride), MPI_DOUBLE,
                                comm_.native()),
                  "MPI_Allgather (batch-norm moments)");
    double count = all_[0];
    for (std::size_t j = 0; j < f; ++j) {
      mean[j] = all_[1 + j];
      var[j] = all_[1 + f + j] * count;  // M2 while merging
    }
    for (int r = 1; r < comm_.size(); ++r) {
      const double* other = all_.data() + std::size_t(r) * stride;
      const double nb = other[0], total = count + nb;
      for (std::size_t j = 0; j < f; ++j) {
        const double delta = other[1 + j] - mean[j];
        mean[j] += delta * nb / total;
        var[j] += other[1 + f + j] * nb + delta * delta * count * nb / total;
      }
      count = total;
    }
    for (std::size_t j = 0; j < f; ++j) var[j] /= count;
    return index_t(count);
  }
  void sum(std::span<double> values) override { comm_.allreduce_sum(values); }

 private:
  communicator& comm_;
  std::vector<double> local_, all_;
};

template <class Net>
class data_parallel final {
 public:
  using T = typename Net::value_type;

  data_parallel(Net& net, communicator& comm, data_parallel_options options = {})
      : net_(net), comm_(comm), options_(options), statistics_(comm) {
    broadcast_state();
    plan_buckets();
    set_batch_norm_sync(options_.sync_batch_norm ? &statistics_ : nullptr);
  }
  data_parallel(const data_parallel&) = delete;
  data_parallel& operator=(const data_parallel&) = delete;
  ~data_parallel() { set_batch_norm_sync(nullptr); }

  Net& network() noexcept { return net_; }
  communicator& comm() noexcept { return comm_; }
  std::size_t bucket_count() const noexcept { return buckets_.size(); }

  // Forward and backward on this rank's slice, gradients averaged over all ranks (overlapped with backward),
  // then the optimizer step. The reported loss is the mean of the ranks' losses and grad_norm the norm of the
  // averaged gradient: the same numbers on every rank.
  // Penalty terms (fnn::penalty::l1/l2) are added after the reduction, as sequential::train_step adds them
  // after backward: the parameters are the same on every rank, so are their penalty gradients, and the
  // reported loss includes them once.
  template <class Loss, class Target, class Optimizer, penalty::penalty_term... Penalties>
  train_stats<T> train_step(const_matrix_view<T> x, const Target& target, const Loss& loss, Optimizer& opt,
                            const Penalties&... penalties) {
    train_stats<T> st;
    st.loss = compute_gradients(x, target, loss);
    if constexpr (sizeof...(Penalties) > 0) {
      double extra = 0;
      net_.for_each_parameter([&](parameter_ref<T>& p) {
        if (!decays_by_default(p.kind)) return;
        ((extra += penalties.value(p), penalties.add_gradient(p)), ...);
      });
      st.loss += T(extra);
    }
    st.grad_norm = net_.grad_norm();
    st.finite = std::isfinite(st.loss) && std::isfinite(st.grad_norm);
    opt.step(net_);
    if (options_.broadcast_buffers) broadcast_buffers();
    if (options_.check_replicas_every > 0 && ++steps_ % options_.check_replicas_every == 0) check_replicas_identical();
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

  void set_batch_norm_sync(batch_statistics_sync* sync) {
    std::apply([&](auto&... layer) { (set_sync_of(layer, sync), ...); }, net_.layers());
  }
  template <class Layer>
  static void set_sync_of(Layer& layer, batch_statistics_sync* sync) {
    if constexpr (requires { layer.set_statistics_sync(sync); }) layer.set_statistics_sync(sync);
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
  mpi_batch_statistics statistics_;
  std::vector<bucket> buckets_;
  std::size_t next_bucket_ = 0;
  std::int64_t steps_ = 0;
};

}  // namespace fnn::distributed
