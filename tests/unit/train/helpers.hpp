#pragma once
// Shared by the fnn_train tests: scratch directories, a small synthetic MNIST-format data set, bitwise
// comparison of predictions.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "trainer.hpp"

namespace fnn_train::test {

// A fresh directory under the system temp dir, removed when the object goes away.
struct scratch_dir {
  std::filesystem::path path;
  explicit scratch_dir(const std::string& name) {
    path = std::filesystem::temp_directory_path() / ("fnn_train_test_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

inline void write_be32(std::ofstream& o, std::uint32_t v) {
  const unsigned char b[4] = {static_cast<unsigned char>(v >> 24), static_cast<unsigned char>(v >> 16),
                              static_cast<unsigned char>(v >> 8), static_cast<unsigned char>(v)};
  o.write(reinterpret_cast<const char*>(b), 4);
}

// Raw (not gzip'd) MNIST-format files: class c is a bright horizontal band at rows 2c..2c+6 plus noise, so
// a network can learn it in a few steps.
inline void write_synthetic_mnist(const std::filesystem::path& dir, int train_n, int test_n, std::uint32_t seed = 1) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> noise(0, 60);
  for (const auto& [prefix, n] : {std::pair<std::string, int>{"train", train_n}, {"t10k", test_n}}) {
    std::ofstream img(dir / (prefix + "-images-idx3-ubyte"), std::ios::binary);
    std::ofstream lab(dir / (prefix + "-labels-idx1-ubyte"), std::ios::binary);
    write_be32(img, 0x0803), write_be32(img, std::uint32_t(n)), write_be32(img, 28), write_be32(img, 28);
    write_be32(lab, 0x0801), write_be32(lab, std::uint32_t(n));
    for (int i = 0; i < n; ++i) {
      const int c = int(gen() % 10);
      const char l = char(c);
      lab.write(&l, 1);
      for (int r = 0; r < 28; ++r)
        for (int k = 0; k < 28; ++k) {
          const int v = (r >= 2 * c && r < 2 * c + 7 ? 180 : 0) + noise(gen);
          const char px = char(static_cast<unsigned char>(std::min(v, 255)));
          img.write(&px, 1);
        }
    }
  }
}

inline const std::filesystem::path fashion_mnist = "/usr/share/datasets/fashion-mnist";

inline bool have_fashion_mnist() {
  std::error_code ec;
  return std::filesystem::exists(fashion_mnist / "train-images-idx3-ubyte.gz", ec) ||
         std::filesystem::exists(fashion_mnist / "train-images-idx3-ubyte", ec);
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// metrics.csv without its two timing columns (epoch_seconds, samples_per_second): what must be reproducible.
inline std::string metrics_without_timings(const std::string& csv) {
  std::istringstream in(csv);
  std::string line, out;
  while (std::getline(in, line)) {
    std::size_t cut = 0;
    for (int k = 0; k < 7; ++k) cut = line.find(',', cut) + 1;
    out += line.substr(0, cut) + "\n";
  }
  return out;
}

// Bit patterns of a view, so "same predictions" means the same bits, not "close".
inline std::vector<std::uint32_t> bits_of(fnn::const_matrix_view<float> v) {
  std::vector<std::uint32_t> out;
  for (fnn::index_t i = 0; i < v.rows(); ++i)
    for (fnn::index_t j = 0; j < v.cols(); ++j) {
      std::uint32_t b;
      std::memcpy(&b, &v(i, j), 4);
      out.push_back(b);
    }
  return out;
}

}  // namespace fnn_train::test
