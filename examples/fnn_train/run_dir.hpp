#pragma once
// The run directory of fnn-train: one writer at a time, leftovers of a crash removed, and a test hook that
// kills the process at a named point so the crash tests can hit every commit point of a checkpoint.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "fnn/core/errors.hpp"

namespace fnn_train {

// An exclusive flock on <dir>/.fnn-train.lock for the life of the run: a second fnn-train on the same
// directory is refused instead of interleaving checkpoints with the first. The kernel drops the lock when
// the process dies, so a kill -9 never leaves a stale lock. Creating the lock file is also the early check
// that the directory is writable (a read-only --out fails here, before any training).
class run_lock final {
 public:
  explicit run_lock(const std::filesystem::path& dir) {
    const auto path = dir / ".fnn-train.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw fnn::io_error(dir.string() + ": the output directory is not writable (creating " + path.filename().string() +
                          ": " + std::generic_category().message(errno) + ")");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd_);
      throw fnn::io_error(dir.string() + (err == EWOULDBLOCK ? ": another fnn-train is writing to this directory"
                                                              : ": cannot lock: " + std::generic_category().message(err)));
    }
  }
  ~run_lock() { ::close(fd_); }
  run_lock(const run_lock&) = delete;
  run_lock& operator=(const run_lock&) = delete;

 private:
  int fd_ = -1;
};

// Temporary files of an interrupted atomic write ("<name>.tmp-<pid>-...", see io::write_safetensors) of the
// files fnn-train owns. Only called with the run lock held, so no live writer owns them.
inline int remove_stale_temporaries(const std::filesystem::path& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    bool ours = false;
    for (std::string_view owned : {"state.safetensors", "model.safetensors", "best.safetensors",
                                   "averaged.safetensors", "ema.safetensors", "metrics.csv", "standardize.safetensors"})
      ours = ours || (name.size() > owned.size() + 5 && name.compare(0, owned.size(), owned) == 0 &&
                      name.compare(owned.size(), 5, ".tmp-") == 0);
    // The epoch snapshots of --average: "epoch-<n>.safetensors.tmp-..."
    const auto snap = name.find(".safetensors.tmp-");
    if (name.rfind("epoch-", 0) == 0 && snap != std::string::npos && snap > 6 &&
        name.find_first_not_of("0123456789", 6) == snap)
      ours = true;
    if (ours && std::filesystem::remove(e.path(), ec)) ++removed;
  }
  return removed;
}

// Test hook: FNN_TRAIN_CRASH_AFTER=<point>:<n> kills the process with SIGKILL right after the n-th time the
// run passes <point> ("state", "model", "best", "snapshot", "metrics": just after that file's atomic rename;
// "step": after an optimizer step).
// Unset: does nothing.
inline void crash_point(std::string_view point) {
  static const std::string spec = [] {
    const char* s = std::getenv("FNN_TRAIN_CRASH_AFTER");
    return std::string(s ? s : "");
  }();
  static int passes = 0;
  if (spec.empty()) return;
  const auto colon = spec.find(':');
  if (spec.compare(0, colon, point) != 0) return;
  if (++passes == std::atoi(spec.c_str() + colon + 1)) ::kill(::getpid(), SIGKILL);
}

}  // namespace fnn_train
