// safetensors files exchanged with PyTorch at the byte level (tests/unit/io/torch_safetensors.py holds the
// Python half). Skipped, visibly, when Debian's python3-torch is not installed.
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "fnn/io/safetensors.hpp"
#include "io_test_support.hpp"

namespace {

namespace io = fnn::io;

bool torch_available() {
  static const bool available = [] {
    const std::string python = FNN_TEST_PYTHON;
    return !python.empty() && std::system((python + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  }();
  if (!available) {
    BOOST_TEST_MESSAGE("skipped: torch not found (" FNN_TEST_PYTHON " -c 'import torch' failed)");
    std::cout << "fnn_io_tests: skipped: torch not found\n";
  }
  return available;
}

int run_script(const std::string& mode, const std::filesystem::path& file) {
  const std::string cmd = std::string(FNN_TEST_PYTHON) + " " FNN_SOURCE_DIR "/tests/unit/io/torch_safetensors.py " +
                          mode + " '" + file.string() + "'";
  const int rc = std::system(cmd.c_str());
  return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The values torch_safetensors.py builds; float literals pass through double first, as Python's do.
const std::vector<float> w_values{static_cast<float>(0.1), -2.5f, 3.25f, static_cast<float>(1e-38), -0.0f, 65504.0f};
std::vector<double> b_values() {
  std::vector<double> b;
  for (int i = 0; i < 5; ++i) b.push_back(i / 3.0);
  return b;
}
const std::vector<std::int64_t> idx_values{-3, 0, std::int64_t{1} << 40};
const std::vector<std::byte> bf16_bytes{std::byte{0x80}, std::byte{0x3F}, std::byte{0x00},
                                        std::byte{0xC0}, std::byte{0x00}, std::byte{0x3F}};  // 1, -2, 0.5

std::vector<io::tensor_entry> fnn_tensors(const std::vector<float>& w) {
  return {io::make_tensor("w", {2, 3}, w), io::make_tensor("b", {5}, b_values()),
          io::make_tensor("idx", {3}, idx_values), io::make_tensor("scalar", {}, std::vector<float>{7.5f}),
          io::tensor_entry{"h", io::dtype::bf16, {3}, bf16_bytes}};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(torch_interop)

BOOST_AUTO_TEST_CASE(torch_writes_fnn_reads) {
  if (!torch_available()) return;
  fnn_test::temp_dir dir;
  const auto path = dir / "from_torch.safetensors";
  BOOST_TEST_REQUIRE(run_script("write", path) == 0);
  const auto f = io::read_safetensors(path);
  BOOST_TEST(f.metadata.at("source") == "torch");
  BOOST_TEST(f.metadata.at("format") == "pt");
  BOOST_TEST_REQUIRE(f.tensors.size() == 5);
  const std::vector<float> w = f.values<float>("w", {2, 3});
  BOOST_TEST(w == w_values, boost::test_tools::per_element());
  BOOST_TEST(std::signbit(w[4]));
  BOOST_TEST(f.values<double>("b", {5}) == b_values(), boost::test_tools::per_element());
  BOOST_TEST(f.values<std::int64_t>("idx", {3}) == idx_values, boost::test_tools::per_element());
  BOOST_TEST(f.values<float>("scalar", {}) == std::vector<float>{7.5f}, boost::test_tools::per_element());
  BOOST_TEST((f.at("h").type == io::dtype::bf16));
  BOOST_TEST((f.at("h").bytes == bf16_bytes));
}

BOOST_AUTO_TEST_CASE(fnn_writes_torch_reads) {
  if (!torch_available()) return;
  fnn_test::temp_dir dir;
  const auto path = dir / "from_fnn.safetensors";
  io::write_safetensors(path, fnn_tensors(w_values), {{"format", "pt"}, {"source", "fnn"}});
  BOOST_TEST(run_script("check", path) == 0);
  // The Python check must be able to fail: one value one ulp off is caught.
  std::vector<float> w_off = w_values;
  w_off[2] = std::nextafter(w_off[2], 10.0f);
  io::write_safetensors(path, fnn_tensors(w_off), {{"format", "pt"}, {"source", "fnn"}});
  BOOST_TEST(run_script("check", path) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
