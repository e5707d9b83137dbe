// fnn-train as a process under crashes and failing disks: kill -9 at random moments and right after each
// commit point, a file-size limit, a full and a read-only file system. Every --resume afterwards must either be
// refused with a message or reproduce the uninterrupted run bit for bit, and no failed write may damage the
// previous checkpoint.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "helpers.hpp"

namespace {

using fnn_train::test::scratch_dir;
namespace fs = std::filesystem;

using fnn_train::test::slurp;

struct outcome {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string output;  // stdout and stderr
};

struct launch {
  std::vector<std::string> args{};
  std::string crash_after{};         // FNN_TRAIN_CRASH_AFTER
  double kill_after_seconds = -1;    // SIGKILL from outside after this long (if still running)
  long file_size_limit = -1;         // RLIMIT_FSIZE in bytes, with SIGXFSZ ignored (writes fail with EFBIG)
};

outcome run(const launch& l, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1), ::dup2(fd, 2);
    if (!l.crash_after.empty()) ::setenv("FNN_TRAIN_CRASH_AFTER", l.crash_after.c_str(), 1);
    if (l.file_size_limit >= 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit r{rlim_t(l.file_size_limit), rlim_t(l.file_size_limit)};
      ::setrlimit(RLIMIT_FSIZE, &r);
    }
    std::vector<char*> argv{const_cast<char*>(FNN_TRAIN_EXE)};
    for (const auto& a : l.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FNN_TRAIN_EXE, argv.data());
    ::_exit(127);
  }
  if (l.kill_after_seconds >= 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(l.kill_after_seconds);
    int st = 0;
    while (std::chrono::steady_clock::now() < until && ::waitpid(pid, &st, WNOHANG) == 0)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    ::kill(pid, SIGKILL);  // harmless if it already exited: the zombie is still ours until waitpid
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  outcome o;
  if (WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) o.signal = WTERMSIG(status);
  o.output = slurp(log);
  return o;
}

// A small but complete run: 4 epochs of 6 steps, augmentation and noise on, so that resume must restore the
// RNG-driven parts exactly too.
std::vector<std::string> job(const fs::path& data, const fs::path& out, bool resume) {
  std::vector<std::string> a{"--data", data.string(), "--out", out.string(), "--epochs", "4", "--batch", "50",
                             "--augment", "--noise", "0.05", "--threads", "1"};
  if (resume) a.push_back("--resume");
  return a;
}

// What an uninterrupted run leaves, minus timings: the model export, the state's tensors, the metrics.
struct run_fingerprint {
  std::string model, metrics;
  std::vector<std::pair<std::string, std::vector<std::byte>>> state;
  bool operator==(const run_fingerprint&) const = default;
};

run_fingerprint fingerprint(const fs::path& out) {
  run_fingerprint f;
  f.model = slurp(out / "model.safetensors");
  f.metrics = fnn_train::test::metrics_without_timings(slurp(out / "metrics.csv"));
  for (auto& t : fnn::io::read_safetensors(out / "state.safetensors").tensors) f.state.emplace_back(t.name, t.bytes);
  return f;
}

int temporaries_in(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().filename().string().find(".tmp-") != std::string::npos;
  return n;
}

struct fixture {
  scratch_dir data{"crash_data"}, reference{"crash_reference"};
  run_fingerprint expected;
  double seconds = 0;
  fixture() {
    fnn_train::test::write_synthetic_mnist(data.path, 300, 100);
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run({.args = job(data.path, reference.path, false)}, reference.path.parent_path() / "crash_ref.log");
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    BOOST_TEST_REQUIRE(r.exit_code == 0, r.output);
    expected = fingerprint(reference.path);
  }
};

// After an interrupted run in `out`: resume until done; the result must be the reference run's.
void check_resume(const fixture& f, const fs::path& out, const std::string& what) {
  const auto r = run({.args = job(f.data.path, out, true)}, out.parent_path() / (out.filename().string() + ".log"));
  if (r.exit_code == 1 && r.output.find("nothing to resume") != std::string::npos) {
    BOOST_TEST(!fs::exists(out / "state.safetensors"), what << ": refused although a state exists");
    return;  // refused cleanly: no epoch was completed
  }
  BOOST_TEST_REQUIRE(r.exit_code == 0, what << ": resume failed: " << r.output);
  BOOST_TEST((fingerprint(out) == f.expected), what << ": the resumed run differs from the uninterrupted one");
  BOOST_TEST(temporaries_in(out) == 0, what << ": temporary files left behind");
}

// The workflow options: a validation split, early stopping, best.safetensors and epoch snapshots for --average
// are more files that follow the state.
std::vector<std::string> workflow_job(const fs::path& data, const fs::path& out) {
  return {"--data", data.string(), "--out", out.string(), "--epochs", "4", "--batch", "50", "--augment",
          "--val", "0.2", "--early-stop", "3", "--average", "2", "--optimizer", "sgd", "--momentum", "0.9",
          "--nesterov", "--lr", "0.05", "--schedule", "multistep", "--milestones", "2,3", "--threads", "1"};
}

struct workflow_fingerprint {
  run_fingerprint run;
  std::string best, averaged;
  bool operator==(const workflow_fingerprint&) const = default;
};

workflow_fingerprint workflow_print(const fs::path& out) {
  return {fingerprint(out), slurp(out / "best.safetensors"), slurp(out / "averaged.safetensors")};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(crashes)

// Killed right after each file of the workflow, then `fnn-train --out DIR --resume` with NO other option: the
// options come back from the state's reflected metadata, and every file ends as the uninterrupted run's.
BOOST_AUTO_TEST_CASE(workflow_files_follow_the_state_and_resume_needs_no_options) {
  scratch_dir data("wf_data"), reference("wf_reference");
  fnn_train::test::write_synthetic_mnist(data.path, 300, 100);
  const auto r0 = run({.args = workflow_job(data.path, reference.path)}, reference.path.parent_path() / "wf_ref.log");
  BOOST_TEST_REQUIRE(r0.exit_code == 0, r0.output);
  BOOST_TEST_REQUIRE(fs::exists(reference.path / "best.safetensors"));
  BOOST_TEST_REQUIRE(fs::exists(reference.path / "averaged.safetensors"));
  BOOST_TEST(!fs::exists(reference.path / "epoch-2.safetensors"));  // only the last K = 2 are kept
  BOOST_TEST(fs::exists(reference.path / "epoch-3.safetensors"));
  BOOST_TEST(slurp(reference.path / "metrics.csv").find("val_loss,val_accuracy") != std::string::npos);
  const auto expected = workflow_print(reference.path);
  for (const char* point : {"state", "model", "best", "snapshot", "metrics"})
    for (int n : {1, 3}) {
      scratch_dir out(std::string("wf_at_") + point + std::to_string(n));
      const std::string at = std::string(point) + ":" + std::to_string(n);
      const auto r = run({.args = workflow_job(data.path, out.path), .crash_after = at}, out.path.parent_path() / "wf_at.log");
      if (r.signal != SIGKILL) {  // "best" passes only when the validation loss improved
        BOOST_TEST((r.exit_code == 0 && std::string(point) == "best"), at << ": " << r.output);
        continue;
      }
      const auto rr = run({.args = {"--data", data.path.string(), "--out", out.path.string(), "--resume"}},
                          out.path.parent_path() / "wf_resume.log");
      if (rr.exit_code == 1 && rr.output.find("nothing to resume") != std::string::npos) continue;
      BOOST_TEST_REQUIRE(rr.exit_code == 0, at << ": " << rr.output);
      BOOST_TEST((workflow_print(out.path) == expected), "killed after " << at << ": the resumed run differs");
      BOOST_TEST(temporaries_in(out.path) == 0);
    }
}


BOOST_AUTO_TEST_CASE(kill_right_after_each_commit_point_then_resume_exactly) {
  const fixture f;
  for (const char* point : {"state", "model", "metrics"})
    for (int n : {1, 2, 4}) {
      scratch_dir out(std::string("crash_at_") + point + std::to_string(n));
      const std::string at = std::string(point) + ":" + std::to_string(n);
      const auto r = run({.args = job(f.data.path, out.path, false), .crash_after = at}, out.path.parent_path() / "crash_at.log");
      BOOST_TEST_REQUIRE(r.signal == SIGKILL, "the crash hook did not fire at " << at << ": " << r.output);
      check_resume(f, out.path, "killed after " + at);
    }
}

BOOST_AUTO_TEST_CASE(kill_at_random_moments_then_resume_exactly_or_refuse) {
  const fixture f;
  std::mt19937 gen(20261202);
  std::uniform_real_distribution<double> when(0.0, 0.9 * f.seconds);
  int killed = 0, refused = 0;
  for (int trial = 0; trial < 30; ++trial) {
    scratch_dir out("crash_random" + std::to_string(trial));
    const double t = when(gen);
    const auto r = run({.args = job(f.data.path, out.path, false), .kill_after_seconds = t}, out.path.parent_path() / "crash_random.log");
    killed += r.signal == SIGKILL;
    refused += !fs::exists(out.path / "state.safetensors");
    check_resume(f, out.path, "killed after " + std::to_string(t) + " s");
  }
  BOOST_TEST_MESSAGE("random kills: " << killed << " of 30 runs killed (run takes " << f.seconds << " s), " << refused
                                      << " before the first checkpoint");
  // The kills really landed inside the runs (most do; on a loaded machine a run's length varies, so some end first).
  BOOST_TEST(killed >= 10);
}

BOOST_AUTO_TEST_CASE(a_file_size_limit_fails_the_write_and_keeps_the_previous_checkpoint) {
  const fixture f;
  scratch_dir out("crash_fsize");
  auto first = job(f.data.path, out.path, false);
  first.insert(first.end(), {"--stop-after", "1"});
  BOOST_TEST_REQUIRE(run({.args = first}, out.path.parent_path() / "fsize1.log").exit_code == 0);
  const std::string state = slurp(out.path / "state.safetensors");
  const auto r = run({.args = job(f.data.path, out.path, true), .file_size_limit = long(state.size() / 2)},
                     out.path.parent_path() / "fsize2.log");
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(r.output.find("File too large") != std::string::npos, r.output);
  BOOST_TEST((slurp(out.path / "state.safetensors") == state));
  BOOST_TEST(temporaries_in(out.path) == 0);
  check_resume(f, out.path, "after a failed write");
}

BOOST_AUTO_TEST_CASE(a_directory_in_place_of_metrics_csv_is_reported_before_training) {
  const fixture f;
  scratch_dir out("crash_metrics_dir");
  fs::create_directories(out.path / "metrics.csv");
  const auto r = run({.args = job(f.data.path, out.path, false)}, out.path.parent_path() / "metrics_dir.log");
  BOOST_TEST(r.exit_code == 1, r.output);
  BOOST_TEST(r.output.find("metrics.csv") != std::string::npos, r.output);
  BOOST_TEST(r.output.find("epoch 1/4") == std::string::npos, "trained before failing: " << r.output);
}

// Needs mount(2) (root in a sandbox that allows it); reported as skipped otherwise.
BOOST_AUTO_TEST_CASE(a_full_and_then_read_only_file_system) {
  const fixture f;
  scratch_dir mnt("crash_tmpfs");
  // One epoch writes the state (3.3 MB) and the model (1.1 MB); replacing the state needs 3.3 MB more.
  if (::mount("fnn-test", mnt.path.c_str(), "tmpfs", 0, "size=6m") != 0) {
    std::cerr << "SKIPPED a_full_and_then_read_only_file_system: mount of a tmpfs failed (" << std::strerror(errno)
              << "); needs root\n";
    return;
  }
  struct unmount {
    fs::path p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } guard{mnt.path};
  const fs::path out = mnt.path / "run";
  const auto first = run({.args = job(f.data.path, out, false)}, f.reference.path.parent_path() / "enospc.log");
  BOOST_TEST(first.exit_code == 1, first.output);
  BOOST_TEST(first.output.find("No space left on device") != std::string::npos, first.output);
  BOOST_TEST_REQUIRE(fs::exists(out / "state.safetensors"));
  const auto epoch1 = fnn::io::read_safetensors(out / "state.safetensors");  // intact: reads and checks
  BOOST_TEST(epoch1.metadata.at("epoch") == "1");
  BOOST_TEST(temporaries_in(out) == 0);

  BOOST_TEST_REQUIRE(::mount("fnn-test", mnt.path.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=6m") == 0);
  const auto ro = run({.args = job(f.data.path, out, true)}, f.reference.path.parent_path() / "erofs.log");
  BOOST_TEST(ro.exit_code == 1, ro.output);
  BOOST_TEST(ro.output.find("not writable") != std::string::npos, ro.output);
  BOOST_TEST(ro.output.find("epoch 2/4") == std::string::npos, "trained before failing: " << ro.output);
}

BOOST_AUTO_TEST_SUITE_END()
