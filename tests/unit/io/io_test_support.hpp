#pragma once
// Helpers for the io/ tests: a scratch directory, byte-level file writers, gzip, and a predicate that
// checks an exception's message.
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fnn_test {

using bytes = std::vector<std::uint8_t>;

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class temp_dir final {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fnn-io-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& p, const bytes& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

inline bytes read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(in), {});
}

// One gzip member (RFC 1952) of data, as gzip(1) would write it; level 0 stores (fast for large test bodies).
inline bytes gzip(const bytes& data, int level = Z_BEST_COMPRESSION) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  bytes out(deflateBound(&z, static_cast<uLong>(data.size())) + 64);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate failed");
  return out;
}

inline bytes concat(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Deterministic bytes that compress only a little, so a gzip'd file has a real body to cut or corrupt.
inline bytes noise(std::size_t n, std::uint32_t seed = 12345) {
  bytes out(n);
  for (auto& b : out) {
    seed = seed * 1664525u + 1013904223u;
    b = static_cast<std::uint8_t>(seed >> 24);
  }
  return out;
}

// AddressSanitizer reserves terabytes of shadow memory, so an address-space limit cannot be used under it.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool under_asan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#else
inline constexpr bool under_asan = false;
#endif

// A bound for "runs in well under a second" tests: 3 s, or 10 s when the sanitizers slow everything ~10 times.
// Either fails on a quadratic algorithm, which takes tens of seconds (minutes under the sanitizers).
inline constexpr double seconds_bound = under_asan ? 10.0 : 3.0;

// A Boost.Test precondition: the test case is reported as skipped (with the reason) under AddressSanitizer.
struct without_asan {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result r(!under_asan);
    r.message() << "needs an address-space limit (RLIMIT_AS), which AddressSanitizer's shadow memory rules out";
    return r;
  }
};

// While alive, the process may map only `headroom` bytes more than it has now (RLIMIT_AS): an allocation
// beyond that fails with std::bad_alloc, whatever the machine's memory. Makes "never allocates what a forged
// header claims" testable on a machine with plenty of RAM.
class address_space_limit final {
 public:
  explicit address_space_limit(std::size_t headroom) {
    if (getrlimit(RLIMIT_AS, &saved_) != 0) throw std::runtime_error("getrlimit failed");
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0;
    if (!(statm >> pages)) throw std::runtime_error("cannot read /proc/self/statm");
    rlimit small = saved_;
    small.rlim_cur = pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) + headroom;
    if (saved_.rlim_max != RLIM_INFINITY && small.rlim_cur > saved_.rlim_max) small.rlim_cur = saved_.rlim_max;
    if (setrlimit(RLIMIT_AS, &small) != 0) throw std::runtime_error("setrlimit failed");
  }
  ~address_space_limit() { setrlimit(RLIMIT_AS, &saved_); }
  address_space_limit(const address_space_limit&) = delete;
  address_space_limit& operator=(const address_space_limit&) = delete;

 private:
  rlimit saved_{};
};

// A predicate for BOOST_CHECK_EXCEPTION: the message contains every fragment (and is shown when it does not).
struct message_has {
  std::vector<std::string> fragments;
  message_has(std::initializer_list<std::string> f) : fragments(f) {}
  bool operator()(const std::exception& e) const {
    const std::string what = e.what();
    for (const auto& f : fragments)
      if (what.find(f) == std::string::npos) {
        std::cerr << "message \"" << what << "\" lacks \"" << f << "\"\n";
        return false;
      }
    return what.rfind("fnn: ", 0) == 0;
  }
};

}  // namespace fnn_test
