// IDX reading, raw and gzip'd: good files round-trip, every kind of bad file is named precisely.
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "fnn/io/idx.hpp"
#include "io_test_support.hpp"

namespace {

using fnn_test::bytes;
using fnn_test::message_has;

// An IDX file: magic (0, 0, type, ndims), big-endian dims, then the payload as given.
bytes idx_file(std::uint8_t type, const std::vector<std::uint32_t>& dims, const bytes& payload) {
  bytes out{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
  return fnn_test::concat(out, payload);
}

template <class T>
bytes big_endian(const std::vector<T>& values) {
  bytes out;
  for (const T& v : values) {
    std::uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    for (std::size_t i = 0; i < sizeof(T); ++i)
      out.push_back(std::endian::native == std::endian::little ? b[sizeof(T) - 1 - i] : b[i]);
  }
  return out;
}

bytes iota_bytes(std::size_t n) {
  bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(i * 7);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(idx)

BOOST_AUTO_TEST_CASE(raw_and_gzip_u8_round_trip) {
  fnn_test::temp_dir dir;
  const bytes file = idx_file(0x08, {3, 2, 2}, iota_bytes(12));
  fnn_test::write_file(dir / "raw", file);
  fnn_test::write_file(dir / "zipped.idx", fnn_test::gzip(file));  // no .gz suffix: the magic decides
  for (const char* name : {"raw", "zipped.idx"}) {
    const auto a = fnn::io::read_idx(dir / name);
    BOOST_TEST((a.type == fnn::io::idx_type::u8));
    BOOST_TEST(a.dims == (std::vector<std::size_t>{3, 2, 2}), boost::test_tools::per_element());
    BOOST_TEST(a.values<std::uint8_t>() == iota_bytes(12), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(wider_types_are_converted_from_big_endian) {
  fnn_test::temp_dir dir;
  const std::vector<std::int32_t> i32{-2, 70000, 0x01020304};
  const std::vector<std::int16_t> i16{-300, 5};
  const std::vector<float> f32{1.5f, -0.1f};
  const std::vector<double> f64{-0.1, 1e300, 3.0};
  fnn_test::write_file(dir / "i32", idx_file(0x0C, {3}, big_endian(i32)));
  fnn_test::write_file(dir / "i16", fnn_test::gzip(idx_file(0x0B, {2, 1}, big_endian(i16))));
  fnn_test::write_file(dir / "f32", idx_file(0x0D, {1, 2}, big_endian(f32)));
  fnn_test::write_file(dir / "f64", idx_file(0x0E, {3}, big_endian(f64)));
  BOOST_TEST(fnn::io::read_idx(dir / "i32").values<std::int32_t>() == i32, boost::test_tools::per_element());
  BOOST_TEST(fnn::io::read_idx(dir / "i16").values<std::int16_t>() == i16, boost::test_tools::per_element());
  BOOST_TEST(fnn::io::read_idx(dir / "f32").values<float>() == f32, boost::test_tools::per_element());
  BOOST_TEST(fnn::io::read_idx(dir / "f64").values<double>() == f64, boost::test_tools::per_element());
  BOOST_CHECK_EXCEPTION(fnn::io::read_idx(dir / "f64").values<float>(), fnn::value_error,
                        (message_has{"IDX data holds f64, requested as f32"}));
}

BOOST_AUTO_TEST_CASE(concatenated_gzip_members_are_one_stream) {
  fnn_test::temp_dir dir;
  const bytes file = idx_file(0x08, {40}, iota_bytes(40));
  const bytes head(file.begin(), file.begin() + 17), tail(file.begin() + 17, file.end());
  fnn_test::write_file(dir / "multi", fnn_test::concat(fnn_test::gzip(head), fnn_test::gzip(tail)));
  BOOST_TEST(fnn::io::read_idx(dir / "multi").values<std::uint8_t>() == iota_bytes(40),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(bad_headers) {
  fnn_test::temp_dir dir;
  const auto check = [&](const bytes& file, std::initializer_list<std::string> fragments) {
    fnn_test::write_file(dir / "bad", file);
    BOOST_CHECK_EXCEPTION(fnn::io::read_idx(dir / "bad"), fnn::io_error, message_has(fragments));
  };
  bytes wrong_magic = idx_file(0x08, {2}, {1, 2});
  wrong_magic[0] = 1;
  check(wrong_magic, {(dir / "bad").string() + ": ", "bad IDX magic 0x01 0x00 0x08 0x01 at offset 0"});
  check(idx_file(0x07, {2}, {1, 2}), {"unsupported IDX type code 0x07 at offset 2"});
  check(idx_file(0x08, {}, {1, 2}), {"IDX number of dimensions at offset 3 is 0"});
  check(idx_file(0x08, {2, 0}, {}), {"IDX dimension 1 (at offset 8) is 0"});
  check({0, 0, 8}, {"truncated IDX header: the 4-byte magic at offset 0 needs 4 bytes, the file ends after 3"});
  check({0, 0, 8, 2, 0, 0, 0, 2, 0}, {"truncated IDX header: the 2 dimension sizes at offset 4 needs 8 bytes"});
}

// Payloads larger than one 16 MiB read step and than the huge-page threshold of fnn::buffer, raw and gzip'd:
// every byte arrives in place (the buffer is reserved, then filled step by step). The body repeats every 256
// bytes and compresses far better than 8:1, so the gzip'd read outgrows its first reservation (8 x the
// compressed size) and regrows several times.
BOOST_AUTO_TEST_CASE(large_payloads_round_trip) {
  fnn_test::temp_dir dir;
  const std::size_t n = (std::size_t{40} << 20) + 12345;
  const bytes payload = iota_bytes(n);
  const bytes file = idx_file(0x08, {static_cast<std::uint32_t>(n)}, payload);
  fnn_test::write_file(dir / "big", file);
  const bytes zipped = fnn_test::gzip(file);
  BOOST_TEST_REQUIRE(zipped.size() * 8 * 4 < n);
  fnn_test::write_file(dir / "big.gz", zipped);
  for (const char* name : {"big", "big.gz"}) {
    const fnn::io::idx_array a = fnn::io::read_idx(dir / name);
    BOOST_TEST_REQUIRE(a.data.size() == n);
    BOOST_TEST(reinterpret_cast<std::uintptr_t>(a.data.data()) % fnn::buffer_alignment == 0u);
    BOOST_TEST(std::memcmp(a.data.data(), payload.data(), n) == 0, name);
  }
}

BOOST_AUTO_TEST_CASE(truncated_and_trailing_payloads) {
  fnn_test::temp_dir dir;
  const auto check = [&](const bytes& file, std::initializer_list<std::string> fragments) {
    fnn_test::write_file(dir / "bad", file);
    BOOST_CHECK_EXCEPTION(fnn::io::read_idx(dir / "bad"), fnn::io_error, message_has(fragments));
  };
  const bytes good = idx_file(0x08, {3, 4}, iota_bytes(12));  // 12-byte header + 12-byte payload
  const bytes short_raw(good.begin(), good.end() - 2);
  check(short_raw, {"truncated IDX payload: the header says [3, 4] of u8 = 12 bytes, the file ends after 10 of them "
                    "(at offset 22)"});
  check(fnn_test::gzip(short_raw), {"truncated IDX payload: the header says [3, 4] of u8 = 12 bytes, the decompressed "
                                    "data ends after 10 of them (at offset 22)"});
  check(fnn_test::concat(good, {9, 9, 9}), {"3 trailing bytes after the IDX payload, which ends at offset 24"});
  check(fnn_test::gzip(fnn_test::concat(good, {9, 9, 9})), {"3 trailing bytes", "of the decompressed data"});
  // A header that claims ~2.8e14 bytes must fail on the missing data, not on allocating for it.
  const std::string claim = "the header says [65535, 65535, 65535] of u8 = 281462092005375 bytes, the ";
  check(idx_file(0x08, {65535, 65535, 65535}, iota_bytes(10)), {claim + "file ends after 10 of them"});
  check(fnn_test::gzip(idx_file(0x08, {65535, 65535, 65535}, iota_bytes(10))),
        {claim + "decompressed data ends after 10 of them"});
}

// The gzip'd Fashion-MNIST images with the count forged to 2^31: before, the reader reserved 1032 times the
// compressed size up front (27 GB for the real 26 MB file) and died of std::bad_alloc without naming the file.
// Here the body is 1 MiB and the process may map only 256 MiB more than it has, so a reservation proportional
// to the claim or to 1032 x the file fails; growing with the data does not.
BOOST_AUTO_TEST_CASE(forged_image_count_in_a_gzip_header) {
  fnn_test::temp_dir dir;
  const std::size_t body = std::size_t{1} << 20;
  const auto path = dir / "train-images-idx3-ubyte.gz";
  fnn_test::write_file(path, fnn_test::gzip(idx_file(0x08, {0x80000000u, 28, 28}, fnn_test::noise(body)), 0));
  const std::vector<std::string> fragments{
      path.string() + ": truncated IDX payload: the header says [2147483648, 28, 28] of u8 = 1683627180032 bytes, "
                      "the decompressed data ends after 1048576 of them (at offset 1048592)"};
  const auto check = [&] {
    BOOST_CHECK_EXCEPTION(fnn::io::read_idx(path), fnn::io_error, (message_has{fragments[0]}));
  };
  if constexpr (fnn_test::under_asan) {
    check();
  } else {
    fnn_test::address_space_limit limit(std::size_t{256} << 20);
    check();
  }
}

// An allocation that fails for real (here: a valid 64 MiB payload, 16 MiB of address space left) is reported
// as io_error naming the file and the payload, not as a bare std::bad_alloc.
BOOST_AUTO_TEST_CASE(out_of_memory_names_the_file, *boost::unit_test::precondition(fnn_test::without_asan{})) {
  fnn_test::temp_dir dir;
  const auto path = dir / "huge.idx";
  const std::uint32_t n = std::uint32_t{64} << 20;
  fnn_test::write_file(path, idx_file(0x08, {n}, {}));
  std::filesystem::resize_file(path, 8 + std::uintmax_t{n});  // sparse: zeros without writing them
  fnn_test::address_space_limit limit(std::size_t{16} << 20);
  BOOST_CHECK_EXCEPTION(fnn::io::read_idx(path), fnn::io_error,
                        (message_has{path.string() + ": out of memory after 0 bytes of the IDX payload (the header "
                                                     "says [67108864] of u8 = 67108864 bytes)"}));
}

// The in-memory entry point (what the fuzzer drives) reads the same bytes the same way and names the input.
BOOST_AUTO_TEST_CASE(parse_idx_from_memory) {
  const bytes file = idx_file(0x0B, {2, 1}, big_endian(std::vector<std::int16_t>{-300, 5}));
  for (const bytes& image : {file, fnn_test::gzip(file)}) {
    const auto a = fnn::io::parse_idx(std::as_bytes(std::span(image)), "in-memory.idx");
    BOOST_TEST(a.values<std::int16_t>() == (std::vector<std::int16_t>{-300, 5}), boost::test_tools::per_element());
  }
  const bytes cut(file.begin(), file.end() - 1);
  BOOST_CHECK_EXCEPTION(fnn::io::parse_idx(std::as_bytes(std::span(cut)), "in-memory.idx"), fnn::io_error,
                        (message_has{"in-memory.idx: truncated IDX payload: the header says [2, 1] of i16 = 4 bytes, "
                                     "the file ends after 3 of them (at offset 15)"}));
  BOOST_CHECK_EXCEPTION(fnn::io::parse_idx({}, "empty.idx"), fnn::io_error,
                        (message_has{"empty.idx: truncated IDX header: the 4-byte magic at offset 0 needs 4 bytes, "
                                     "the file ends after 0"}));
}

BOOST_AUTO_TEST_CASE(damaged_gzip_streams) {
  fnn_test::temp_dir dir;
  const auto check = [&](const bytes& file, std::initializer_list<std::string> fragments) {
    fnn_test::write_file(dir / "bad.gz", file);
    BOOST_CHECK_EXCEPTION(fnn::io::read_idx(dir / "bad.gz"), fnn::io_error, message_has(fragments));
  };
  const bytes zipped = fnn_test::gzip(idx_file(0x08, {100, 1000}, fnn_test::noise(100000)));
  check(bytes(zipped.begin(), zipped.begin() + static_cast<long>(zipped.size() / 2)),
        {"truncated gzip stream after ", " bytes of 100000 expected"});
  check(bytes(zipped.begin(), zipped.end() - 8),
        {"truncated gzip stream: the IDX payload is complete but the gzip end-of-stream and CRC trailer are missing"});
  bytes bad_crc = zipped;
  bad_crc[bad_crc.size() - 8] ^= 0x01;  // first byte of the CRC-32 trailer
  check(bad_crc, {"corrupt gzip stream at compressed byte offset", "incorrect data check"});
  const bytes text_zipped = fnn_test::gzip(idx_file(0x08, {2000}, iota_bytes(2000)));
  bytes bad_body = text_zipped;
  bad_body[bad_body.size() / 2] ^= 0x40;
  check(bad_body, {"corrupt gzip stream at compressed byte offset"});
  check(fnn_test::concat(text_zipped, {'x', 'y'}),
        {"unexpected data after the end of the gzip stream at compressed byte offset " +
         std::to_string(text_zipped.size())});
}

BOOST_AUTO_TEST_CASE(missing_files) {
  fnn_test::temp_dir dir;
  BOOST_CHECK_EXCEPTION(
      fnn::io::read_idx(dir / "nope"), fnn::io_error,
      (message_has{(dir / "nope").string() + ": cannot open for reading: No such file or directory"}));
  BOOST_CHECK_EXCEPTION(fnn::io::read_idx(dir.path()), fnn::io_error,
                        (message_has{dir.path().string() + ": is a directory, expected a file"}));
}

BOOST_AUTO_TEST_SUITE_END()
