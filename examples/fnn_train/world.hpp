#pragma once
// The processes of one fnn-train run: this process alone, or (--distributed, in a build that found MPI) the
// ranks of an MPI job started by mpirun. Every rank runs the same trainer on the same data with the same
// seed; what differs by rank is which slice of each global batch it trains on and that only rank 0 writes
// files or prints. Files rank 0 reads on behalf of everyone (the training state on --resume) travel to the
// other ranks over MPI, so N machines need no shared file system, only the data set on each.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "fnn/core/errors.hpp"
#include "fnn/io/checkpoint.hpp"
#ifdef FNN_TRAIN_MPI
#include "fnn/distributed/data_parallel.hpp"
#endif

namespace fnn_train {

class world final {
 public:
  world() = default;  // this process alone
  // distributed: the ranks of MPI_COMM_WORLD (MPI must be initialized: fnn-train's main does it).
  explicit world(bool distributed) {
    if (!distributed) return;
#ifdef FNN_TRAIN_MPI
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) throw fnn::value_error("--distributed: MPI is not initialized (start fnn-train with mpirun)");
    comm_.emplace();
#else
    throw fnn::value_error(
        "--distributed: this fnn-train was built without MPI (scripts/setup.sh installs openmpi-bin and "
        "libopenmpi-dev; then reconfigure and rebuild)");
#endif
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

#ifdef FNN_TRAIN_MPI
  bool distributed() const noexcept { return comm_.has_value(); }
  int rank() const noexcept { return comm_ ? comm_->rank() : 0; }
  int size() const noexcept { return comm_ ? comm_->size() : 1; }
  fnn::distributed::communicator& comm() { return *comm_; }
#else
  bool distributed() const noexcept { return false; }
  int rank() const noexcept { return 0; }
  int size() const noexcept { return 1; }
#endif
  bool root() const noexcept { return rank() == 0; }

  // The sum over the ranks (this value alone when not distributed).
  long long sum(long long v) {
#ifdef FNN_TRAIN_MPI
    if (comm_) return comm_->sum(static_cast<std::int64_t>(v));
#endif
    return v;
  }

  // Rank 0's copy of a safetensors file, parsed on every rank (none if rank 0 has no such file). The bytes
  // are rank 0's: one reader, the same state everywhere.
  std::optional<fnn::io::safetensors_file> read_on_root(const std::filesystem::path& path) {
    if (!distributed()) {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) return std::nullopt;
      return fnn::io::read_safetensors(path);
    }
#ifdef FNN_TRAIN_MPI
    std::vector<std::byte> bytes;
    std::int64_t size = -1;  // -1: rank 0 has no such file
    if (root()) {
      std::error_code ec;
      if (std::filesystem::exists(path, ec)) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw fnn::io_error(path.string() + ": cannot open for reading");
        const std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (in.bad()) throw fnn::io_error(path.string() + ": read error");
        bytes.resize(raw.size());
        std::memcpy(bytes.data(), raw.data(), raw.size());
        size = std::int64_t(bytes.size());
      }
    }
    comm_->broadcast(std::span<std::int64_t>(&size, 1), 0);
    if (size < 0) return std::nullopt;
    bytes.resize(std::size_t(size));
    constexpr std::size_t chunk = std::size_t(1) << 30;  // MPI counts are ints
    for (std::size_t at = 0; at < bytes.size(); at += chunk) {
      const int n = int(std::min(chunk, bytes.size() - at));
      fnn::distributed::detail::check(MPI_Bcast(bytes.data() + at, n, MPI_BYTE, 0, comm_->native()),
                                      "MPI_Bcast (training state)");
    }
    return fnn::io::parse_safetensors(std::span<const std::byte>(bytes), path);
#else
    return std::nullopt;
#endif
  }

 private:
#ifdef FNN_TRAIN_MPI
  std::optional<fnn::distributed::communicator> comm_;
#endif
};

}  // namespace fnn_train
