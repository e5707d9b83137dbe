// load_mnist and load_mnist_bytes on hand-made MNIST-format directories, and once on Debian's Fashion-MNIST
// when installed.
#include <algorithm>
#include <array>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fnn/io/mnist.hpp"
#include "io_test_support.hpp"

namespace {

using fnn_test::bytes;
using fnn_test::message_has;

bytes idx_u8(const std::vector<std::uint32_t>& dims, const bytes& payload, std::uint8_t type = 0x08) {
  bytes out{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  return fnn_test::concat(out, payload);
}

// 5 images of 4 x 3 pixels: image i, pixel p has value (51 * (i + p)) % 256, so 0, 51, ..., 255 all occur.
bytes pixels(std::size_t n = 5) {
  bytes out(n * 12);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>((51 * (i / 12 + i % 12)) % 256);
  return out;
}

const bytes labels5{3, 1, 4, 1, 5};

void write_split(const fnn_test::temp_dir& dir, const std::string& prefix, const bytes& images, const bytes& labels,
                 bool gz) {
  const std::string ext = gz ? ".gz" : "";
  fnn_test::write_file(dir / (prefix + "-images-idx3-ubyte" + ext), gz ? fnn_test::gzip(images) : images);
  fnn_test::write_file(dir / (prefix + "-labels-idx1-ubyte" + ext), gz ? fnn_test::gzip(labels) : labels);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(mnist)

BOOST_AUTO_TEST_CASE(loads_raw_and_gzip_splits) {
  fnn_test::temp_dir dir;
  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({5}, labels5), false);
  write_split(dir, "t10k", idx_u8({2, 4, 3}, pixels(2)), idx_u8({2}, {9, 0}), true);
  const auto train = fnn::io::load_mnist(dir.path(), fnn::io::split::train);
  BOOST_TEST(train.size() == 5);
  BOOST_TEST(train.rows == 4);
  BOOST_TEST(train.cols == 3);
  BOOST_TEST(train.classes == 10);
  BOOST_TEST(train.images.cols() == 12);
  BOOST_TEST(train.labels == (std::vector<std::int32_t>{3, 1, 4, 1, 5}), boost::test_tools::per_element());
  const bytes px = pixels();
  for (std::size_t i = 0; i < px.size(); ++i) BOOST_TEST(train.images.data()[i] == static_cast<float>(px[i]) / 255.0f);
  BOOST_TEST(*std::max_element(train.images.data(), train.images.data() + 60) == 1.0f);

  const auto test = fnn::io::load_mnist(dir.path(), fnn::io::split::test);
  BOOST_TEST(test.size() == 2);
  BOOST_TEST(test.labels == (std::vector<std::int32_t>{9, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bytes_loader_keeps_the_payload_and_load_mnist_divides_it) {
  fnn_test::temp_dir dir;
  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({5}, labels5), true);
  const auto b = fnn::io::load_mnist_bytes(dir.path(), fnn::io::split::train);
  BOOST_TEST(b.size() == 5);
  BOOST_TEST(b.rows == 4);
  BOOST_TEST(b.cols == 3);
  BOOST_TEST(b.classes == 10);
  BOOST_TEST(b.data.size() == 60u);
  BOOST_TEST(b.labels == (std::vector<std::int32_t>{3, 1, 4, 1, 5}), boost::test_tools::per_element());
  const auto px = b.pixels();
  BOOST_TEST(px.rows() == 5);
  BOOST_TEST(px.cols() == 12);
  const bytes want = pixels();
  for (fnn::index_t i = 0; i < 5; ++i)
    for (fnn::index_t j = 0; j < 12; ++j) BOOST_TEST(px(i, j) == want[static_cast<std::size_t>(i * 12 + j)]);

  const auto f = fnn::io::load_mnist(dir.path(), fnn::io::split::train);
  BOOST_TEST(f.images.rows() == 5);
  BOOST_TEST(f.images.cols() == 12);
  BOOST_TEST(f.labels == b.labels, boost::test_tools::per_element());
  for (fnn::index_t i = 0; i < 5; ++i)
    for (fnn::index_t j = 0; j < 12; ++j) BOOST_TEST(f.images(i, j) == static_cast<float>(px(i, j)) / 255.0f);

  // The conversion is a division: every byte gives what the scalar expression gives, at any length.
  std::vector<std::uint8_t> all(259);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  std::vector<float> out(all.size(), -1.0f);
  fnn::io::pixels_to_float(all.data(), all.size(), out.data());
  for (std::size_t i = 0; i < all.size(); ++i) BOOST_TEST(out[i] == static_cast<float>(all[i]) / 255.0f);

  // The same errors as load_mnist.
  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({4}, {1, 2, 3, 4}), true);
  BOOST_CHECK_EXCEPTION(
      fnn::io::load_mnist_bytes(dir.path(), fnn::io::split::train), fnn::io_error,
      (message_has{"5 images in train-images-idx3-ubyte.gz but 4 labels in train-labels-idx1-ubyte.gz"}));
}

BOOST_AUTO_TEST_CASE(prefers_gzip_when_both_exist) {
  fnn_test::temp_dir dir;
  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({5}, labels5), false);
  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({5}, {0, 0, 0, 0, 7}), true);
  BOOST_TEST(fnn::io::load_mnist(dir.path(), fnn::io::split::train).labels[4] == 7);
}

BOOST_AUTO_TEST_CASE(rejects_inconsistent_files) {
  fnn_test::temp_dir dir;
  const auto check_io = [&](const bytes& images, const bytes& labels, std::initializer_list<std::string> fragments) {
    write_split(dir, "train", images, labels, false);
    BOOST_CHECK_EXCEPTION(fnn::io::load_mnist(dir.path(), fnn::io::split::train), fnn::io_error,
                          message_has(fragments));
  };
  check_io(idx_u8({5, 4, 3}, pixels()), idx_u8({4}, {1, 2, 3, 4}),
           {"5 images in train-images-idx3-ubyte but 4 labels in train-labels-idx1-ubyte"});
  check_io(idx_u8({5, 12}, pixels()), idx_u8({5}, labels5),
           {"train-images-idx3-ubyte: images must be 3-D, got 2-D [5, 12]"});
  check_io(idx_u8({5, 4, 3}, pixels()), idx_u8({5, 1}, labels5), {"labels must be 1-D, got 2-D [5, 1]"});
  check_io(idx_u8({5, 4, 3}, pixels()), idx_u8({5}, bytes(20), 0x0C),
           {"labels must be unsigned bytes (IDX type 0x08), got i32"});

  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({5}, {3, 1, 4, 10, 5}), false);
  BOOST_CHECK_EXCEPTION(fnn::io::load_mnist(dir.path(), fnn::io::split::train), fnn::value_error,
                        (message_has{"train-labels-idx1-ubyte: label at index 3 is 10, outside [0, 10)"}));
}

BOOST_AUTO_TEST_CASE(missing_directory_or_files) {
  fnn_test::temp_dir dir;
  BOOST_CHECK_EXCEPTION(fnn::io::load_mnist(dir / "absent", fnn::io::split::train), fnn::io_error,
                        (message_has{(dir / "absent").string() + ": MNIST directory does not exist",
                                     "dataset-fashion-mnist", "/usr/share/datasets/fashion-mnist"}));
  write_split(dir, "train", idx_u8({5, 4, 3}, pixels()), idx_u8({5}, labels5), false);
  std::filesystem::remove(dir / "train-labels-idx1-ubyte");
  BOOST_CHECK_EXCEPTION(
      fnn::io::load_mnist(dir.path(), fnn::io::split::train), fnn::io_error,
      (message_has{"neither train-labels-idx1-ubyte.gz nor train-labels-idx1-ubyte found in this directory"}));
}

BOOST_AUTO_TEST_CASE(debian_fashion_mnist) {
  const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::is_directory(dir)) {
    BOOST_TEST_MESSAGE("skipped: " << dir << " not found (apt install dataset-fashion-mnist)");
    std::cout << "fnn_io_tests: skipped debian_fashion_mnist: " << dir << " not found\n";
    return;
  }
  for (const auto& [which, n] : {std::pair{fnn::io::split::train, 60000}, std::pair{fnn::io::split::test, 10000}}) {
    const auto d = fnn::io::load_mnist(dir, which);
    BOOST_TEST(d.size() == n);
    BOOST_TEST(d.rows == 28);
    BOOST_TEST(d.cols == 28);
    BOOST_TEST(d.images.cols() == 784);
    std::array<int, 10> per_class{};
    for (std::int32_t l : d.labels) ++per_class[static_cast<std::size_t>(l)];
    for (int c : per_class) BOOST_TEST(c == n / 10);  // Fashion-MNIST is balanced
    const auto [lo, hi] = std::minmax_element(d.images.data(), d.images.data() + d.images.size());
    BOOST_TEST(*lo == 0.0f);
    BOOST_TEST(*hi == 1.0f);
    const auto b = fnn::io::load_mnist_bytes(dir, which);
    BOOST_TEST(b.size() == n);
    BOOST_TEST(b.pixels().cols() == 784);
    BOOST_TEST(b.labels == d.labels, boost::test_tools::per_element());
    bool same = true;
    for (fnn::index_t i = 0; i < d.images.size(); ++i)
      same = same && d.images.data()[i] == static_cast<float>(b.pixels().data()[i]) / 255.0f;
    BOOST_TEST(same);
  }
}

BOOST_AUTO_TEST_SUITE_END()
