#pragma once
// A thin owner of an MPI communicator for data-parallel training (Open MPI from Debian: openmpi-bin,
// libopenmpi-dev). Errors come back as fnn::distributed_error naming the call and MPI's own message, not as
// MPI's default abort, so a caller can write "rank 1: MPI_Iallreduce failed: ..." before it exits. Optional:
// nothing else in fnn includes this header, and the library builds without MPI.
//
//   fnn::distributed::environment mpi(argc, argv);   // MPI_Init_thread .. MPI_Finalize
//   fnn::distributed::communicator world;            // a duplicate of MPI_COMM_WORLD
//   world.allreduce_sum(std::span<float>(grads));
#include <mpi.h>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace fnn {

// An MPI call failed (a peer died, the network went away, sizes disagree between ranks).
class distributed_error final : public std::runtime_error {
 public:
  explicit distributed_error(const std::string& what) : std::runtime_error("fnn: " + what) {}
};

}  // namespace fnn

namespace fnn::distributed {

namespace detail {

inline void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  throw distributed_error("rank " + std::to_string(rank) + ": " + call + " failed: " + std::string(text, length));
}

template <class T>
MPI_Datatype datatype_of() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return MPI_UINT32_T;
  else if constexpr (std::is_same_v<T, int>) return MPI_INT;
  else static_assert(sizeof(T) == 0, "fnn: no MPI datatype for this element type");
}

}  // namespace detail

// MPI_Init_thread on construction (funneled: only the thread that made it calls MPI; OpenMP threads inside
// kernels never do), MPI_Finalize on destruction. If MPI is already initialized it does neither.
class environment final {
 public:
  environment(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    detail::check(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    owner_ = true;
  }
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;
  ~environment() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }

 private:
  bool owner_ = false;
};

// One outstanding non-blocking operation; wait() (or the destructor) completes it.
class request final {
 public:
  request() = default;
  explicit request(MPI_Request r) : r_(r) {}
  request(request&& o) noexcept : r_(o.r_) { o.r_ = MPI_REQUEST_NULL; }
  request& operator=(request&& o) noexcept {
    if (this != &o) {
      finish_quietly();
      r_ = o.r_;
      o.r_ = MPI_REQUEST_NULL;
    }
    return *this;
  }
  ~request() { finish_quietly(); }

  void wait() {
    if (r_ == MPI_REQUEST_NULL) return;
    detail::check(MPI_Wait(&r_, MPI_STATUS_IGNORE), "MPI_Wait");
  }
  // Lets MPI progress the operation (Open MPI moves non-blocking collectives only inside MPI calls).
  bool test() {
    if (r_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    detail::check(MPI_Test(&r_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  bool pending() const noexcept { return r_ != MPI_REQUEST_NULL; }

 private:
  void finish_quietly() noexcept {
    if (r_ != MPI_REQUEST_NULL) MPI_Wait(&r_, MPI_STATUS_IGNORE);
  }
  MPI_Request r_ = MPI_REQUEST_NULL;
};

class communicator final {
 public:
  // A duplicate of MPI_COMM_WORLD whose errors are returned (and thrown), not fatal.
  communicator() : communicator(MPI_COMM_WORLD) {}
  explicit communicator(MPI_Comm base) {
    detail::check(MPI_Comm_dup(base, &comm_), "MPI_Comm_dup");
    detail::check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    detail::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  communicator(const communicator&) = delete;
  communicator& operator=(const communicator&) = delete;
  ~communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  int rank() const noexcept { return rank_; }
  int size() const noexcept { return size_; }
  MPI_Comm native() const noexcept { return comm_; }

  // In-place element-wise sum over all ranks. For a fixed rank count and length Open MPI picks the same
  // algorithm on every call, so the result is deterministic; with 2 ranks it is a + b on both (commutative).
  template <class T>
  void allreduce_sum(std::span<T> data) {
    if (data.empty()) return;
    detail::check(MPI_Allreduce(MPI_IN_PLACE, data.data(), count_of(data.size()), detail::datatype_of<T>(), MPI_SUM,
                                comm_),
                  "MPI_Allreduce");
  }
  template <class T>
  [[nodiscard]] request iallreduce_sum(std::span<T> data) {
    MPI_Request r = MPI_REQUEST_NULL;
    if (data.empty()) return request{};
    detail::check(MPI_Iallreduce(MPI_IN_PLACE, data.data(), count_of(data.size()), detail::datatype_of<T>(), MPI_SUM,
                                 comm_, &r),
                  "MPI_Iallreduce");
    return request{r};
  }
  template <class T>
  T sum(T value) {
    allreduce_sum(std::span<T>(&value, 1));
    return value;
  }
  template <class T>
  void broadcast(std::span<T> data, int root = 0) {
    if (data.empty()) return;
    detail::check(MPI_Bcast(data.data(), count_of(data.size()), detail::datatype_of<T>(), root, comm_), "MPI_Bcast");
  }
  template <class T>
  std::vector<T> allgather(T value) {
    std::vector<T> all(static_cast<std::size_t>(size_));
    const auto type = detail::datatype_of<T>();
    detail::check(MPI_Allgather(&value, 1, type, all.data(), 1, type, comm_), "MPI_Allgather");
    return all;
  }
  void barrier() { detail::check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  static int count_of(std::size_t n) {
    if (n > static_cast<std::size_t>(INT32_MAX))
      throw distributed_error("a collective of " + std::to_string(n) + " elements exceeds MPI's int count");
    return static_cast<int>(n);
  }
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace fnn::distributed
