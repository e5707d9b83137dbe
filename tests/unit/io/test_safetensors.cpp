// safetensors: byte layout, round trips, atomic writes, and the precise rejection of malformed files.
#include <signal.h>
#include <sys/resource.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "fnn/io/safetensors.hpp"
#include "io_test_support.hpp"

namespace {

using fnn_test::bytes;
using fnn_test::message_has;
namespace io = fnn::io;

// A safetensors file from a header text and a data section, without any checking: for malformed inputs.
bytes raw_file(const std::string& header, const bytes& data) {
  bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(header.size() >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  return fnn_test::concat(out, data);
}

bytes as_u8(const std::vector<std::byte>& b) {
  return bytes(reinterpret_cast<const std::uint8_t*>(b.data()),
               reinterpret_cast<const std::uint8_t*>(b.data()) + b.size());
}

bool has_temporaries(const std::filesystem::path& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

std::vector<io::tensor_entry> sample_tensors() {
  const std::vector<float> w{0.5f, -1.25f, 3e-39f, 65504.0f, -0.0f, 7.0f};
  const std::vector<double> b{0.1, -2.0, 1e300};
  const std::vector<std::int64_t> idx{-3, 0, std::int64_t{1} << 40, 9};
  const std::vector<std::int32_t> i32{-7, 8};
  const std::vector<std::uint8_t> u8{0, 255, 17};
  std::vector<io::tensor_entry> ts;
  ts.push_back(io::make_tensor("layer.0.weight", {2, 3}, w));
  ts.push_back(io::make_tensor("layer.0.bias", {3}, b));
  ts.push_back(io::make_tensor("idx", {2, 2}, idx));
  ts.push_back(io::make_tensor("i32", {2}, i32));
  ts.push_back(io::make_tensor("u8", {3}, u8));
  ts.push_back(io::make_tensor("scalar", {}, std::vector<float>{42.5f}));
  ts.push_back(io::make_tensor("empty", {0, 4}, std::vector<float>{}));
  // BF16 has no C++ type here: its raw bytes pass through (1.0, -2.0 little-endian).
  ts.push_back(io::tensor_entry{
      "bf16", io::dtype::bf16, {2}, {std::byte{0x80}, std::byte{0x3F}, std::byte{0x00}, std::byte{0xC0}}});
  return ts;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(byte_layout_of_a_tiny_file) {
  fnn_test::temp_dir dir;
  io::write_safetensors(dir / "t.safetensors", std::vector{io::make_tensor("x", {}, std::vector<float>{1.0f})});
  const std::string json = R"({"x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})";  // 53 bytes, padded to 56
  bytes expected = raw_file(json + "   ", {0x00, 0x00, 0x80, 0x3F});
  BOOST_TEST(fnn_test::read_file(dir / "t.safetensors") == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(round_trip_preserves_everything) {
  fnn_test::temp_dir dir;
  const auto ts = sample_tensors();
  const io::metadata meta{{"format", "pt"}, {"note", "quote \" backslash \\ \xc3\xbc"}};
  io::write_safetensors(dir / "m.safetensors", ts, meta);
  const bytes raw = fnn_test::read_file(dir / "m.safetensors");
  std::uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  BOOST_TEST(n % 8 == 0);

  const io::safetensors_file f = io::read_safetensors(dir / "m.safetensors");
  BOOST_TEST((f.metadata == meta));
  BOOST_TEST_REQUIRE(f.tensors.size() == ts.size());
  for (std::size_t i = 0; i < ts.size(); ++i) {
    BOOST_TEST(f.tensors[i].name == ts[i].name);
    BOOST_TEST((f.tensors[i].type == ts[i].type));
    BOOST_TEST(f.tensors[i].shape == ts[i].shape, boost::test_tools::per_element());
    BOOST_TEST(as_u8(f.tensors[i].bytes) == as_u8(ts[i].bytes), boost::test_tools::per_element());
  }
  const std::vector<float> w = f.values<float>("layer.0.weight", {2, 3});
  BOOST_TEST(w == (std::vector<float>{0.5f, -1.25f, 3e-39f, 65504.0f, -0.0f, 7.0f}), boost::test_tools::per_element());
  BOOST_TEST(std::signbit(w[4]));
  BOOST_TEST(f.values<double>("layer.0.bias", {3}) == (std::vector<double>{0.1, -2.0, 1e300}),
             boost::test_tools::per_element());
  BOOST_TEST(f.values<std::int64_t>("idx", {2, 2})[2] == std::int64_t{1} << 40);
  BOOST_TEST(f.values<float>("scalar", {}) == std::vector<float>{42.5f}, boost::test_tools::per_element());
  BOOST_TEST(f.values<float>("empty", {0, 4}).empty());
}

BOOST_AUTO_TEST_CASE(typed_access_checks_name_dtype_and_shape) {
  fnn_test::temp_dir dir;
  io::write_safetensors(dir / "m.safetensors", sample_tensors());
  const auto f = io::read_safetensors(dir / "m.safetensors");
  const std::string p = (dir / "m.safetensors").string();
  BOOST_CHECK_EXCEPTION(f.values<float>("layer.0.bias", {3}), fnn::value_error,
                        (message_has{p + ": tensor 'layer.0.bias' has dtype F64, expected F32"}));
  BOOST_CHECK_EXCEPTION(f.values<float>("layer.0.weight", {3, 2}), fnn::shape_error,
                        (message_has{p + ": tensor 'layer.0.weight' has shape [2, 3], expected [3, 2]"}));
  BOOST_CHECK_EXCEPTION(f.at("nope"), fnn::value_error,
                        (message_has{p + ": no tensor named 'nope' (the file holds 'layer.0.weight', 'layer.0.bias'"}));
}

BOOST_AUTO_TEST_CASE(bad_entries_are_rejected_before_writing) {
  fnn_test::temp_dir dir;
  const auto path = dir / "m.safetensors";
  auto ts = sample_tensors();
  ts.push_back(ts[1]);
  BOOST_CHECK_EXCEPTION(io::write_safetensors(path, ts), fnn::value_error,
                        (message_has{"duplicate tensor name 'layer.0.bias'"}));
  ts.pop_back();
  ts[0].bytes.pop_back();
  BOOST_CHECK_EXCEPTION(io::write_safetensors(path, ts), fnn::shape_error,
                        (message_has{"tensor 'layer.0.weight': shape [2, 3] of F32 needs 6 x 4 bytes, got 23"}));
  BOOST_TEST(!std::filesystem::exists(path));
  BOOST_TEST(!has_temporaries(dir.path()));
  BOOST_CHECK_EXCEPTION(io::make_tensor("w", {2, 2}, std::vector<float>{1, 2, 3}), fnn::shape_error,
                        (message_has{"tensor 'w': shape [2, 2] does not hold 3 values"}));
}

BOOST_AUTO_TEST_CASE(failed_rename_leaves_no_temporary) {
  fnn_test::temp_dir dir;
  std::filesystem::create_directories(dir / "target" / "child");  // rename(2) cannot replace a non-empty directory
  BOOST_CHECK_EXCEPTION(io::write_safetensors(dir / "target", sample_tensors()), fnn::io_error,
                        (message_has{(dir / "target").string() + ": cannot rename "}));
  BOOST_TEST(std::filesystem::is_directory(dir / "target" / "child"));
  BOOST_TEST(!has_temporaries(dir.path()));
  BOOST_CHECK_EXCEPTION(io::write_safetensors(dir / "absent" / "m.safetensors", sample_tensors()), fnn::io_error,
                        (message_has{"cannot create a temporary file", "No such file or directory"}));
}

// A write that fails half-way (here: the file size limit, as a full disk would) keeps the previous checkpoint.
BOOST_AUTO_TEST_CASE(failed_write_keeps_the_old_file) {
  fnn_test::temp_dir dir;
  const auto path = dir / "m.safetensors";
  io::write_safetensors(path, sample_tensors());
  const bytes before = fnn_test::read_file(path);
  const std::vector<float> big(1 << 16, 1.0f);

  rlimit saved{};
  BOOST_TEST_REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
  rlimit small = saved;
  small.rlim_cur = 4096;
  BOOST_TEST_REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    io::write_safetensors(path, std::vector{io::make_tensor("big", {1 << 16}, big)});
  } catch (const fnn::io_error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);

  BOOST_TEST(message.find("failed at byte offset 4096: File too large") != std::string::npos, message);
  BOOST_TEST(fnn_test::read_file(path) == before, boost::test_tools::per_element());
  BOOST_TEST(!has_temporaries(dir.path()));
  BOOST_TEST(io::read_safetensors(path).tensors.size() == sample_tensors().size());
}

BOOST_AUTO_TEST_CASE(overwrite_replaces_the_file) {
  fnn_test::temp_dir dir;
  const auto path = dir / "m.safetensors";
  io::write_safetensors(path, sample_tensors());
  io::write_safetensors(path, std::vector{io::make_tensor("only", {1}, std::vector<double>{2.0})});
  const auto f = io::read_safetensors(path);
  BOOST_TEST(f.tensors.size() == 1);
  BOOST_TEST(f.values<double>("only", {1})[0] == 2.0);
  BOOST_TEST(!has_temporaries(dir.path()));
}

BOOST_AUTO_TEST_CASE(malformed_files) {
  fnn_test::temp_dir dir;
  const auto path = dir / "bad.safetensors";
  const auto check = [&](const bytes& file, std::initializer_list<std::string> fragments) {
    fnn_test::write_file(path, file);
    BOOST_CHECK_EXCEPTION(io::read_safetensors(path), fnn::io_error, message_has(fragments));
  };
  const std::string p = path.string() + ": ";
  const auto t = [](const std::string& name, const std::string& dtype, const std::string& shape, const std::string& o) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + o + "}";
  };
  check({1, 2, 3, 4, 5}, {p + "file is 5 bytes, shorter than the 8-byte safetensors header length"});
  bytes long_header = raw_file("{}", bytes(10));
  long_header[0] = 100;
  check(long_header, {p + "header length 100 (bytes 0-7) exceeds the 12 bytes that follow"});
  check(raw_file(R"({"a":{"dtype":"F32",}})", {}), {p + "malformed JSON at byte offset 28: expected a string key"});
  check(raw_file("[]", {}), {p + "header must be a JSON object, got array"});
  check(raw_file("{" + t("a", "F128", "[1]", "[0,4]") + "}", bytes(4)), {p + "tensor 'a' has unknown dtype 'F128'"});
  check(raw_file("{" + t("a", "F32", "[2]", "[0,8]") + "}", bytes(4)),
        {p + "tensor 'a' data_offsets [0, 8] are out of bounds of the 4-byte data section"});
  check(raw_file("{" + t("a", "F32", "[0]", "[4,0]") + "}", bytes(4)), {"data_offsets [4, 0] are out of bounds"});
  check(raw_file("{" + t("a", "F32", "[3]", "[0,8]") + "}", bytes(8)),
        {p + "tensor 'a' data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 3 x 4"});
  check(raw_file("{" + t("a", "F32", "[2]", "[0,8]") + "," + t("b", "F32", "[2]", "[4,12]") + "}", bytes(12)),
        {p + "tensor 'b' data_offsets begin at 4, overlapping tensor 'a' which ends at 8"});
  check(raw_file("{" + t("a", "F32", "[1]", "[0,4]") + "," + t("b", "F32", "[1]", "[8,12]") + "}", bytes(12)),
        {p +
         "tensor 'b' data_offsets begin at 8, leaving a gap after tensor 'a' (data bytes [4, 8) belong to no tensor)"});
  check(raw_file("{" + t("a", "F32", "[1]", "[4,8]") + "}", bytes(8)),
        {"leaving a gap after the start of the data section"});
  check(raw_file("{" + t("a", "F32", "[1]", "[0,4]") + "}", bytes(8)),
        {p + "4 trailing bytes in the data section belong to no tensor (data bytes [4, 8))"});
  check(raw_file(R"({"a":{"dtype":"F32","shape":[1]}})", bytes(4)), {p + "tensor 'a' has no \"data_offsets\""});
  check(raw_file("{" + t("a", "F32", "[-1]", "[0,4]") + "}", bytes(4)),
        {p + "tensor 'a' shape entry must be a non-negative integer, got -1"});
  check(raw_file(R"({"__metadata__":{"k":1}})", {}), {p + "\"__metadata__\" value of \"k\" must be a string"});
  check(raw_file("{\"a\xff\":1}", {}), {p + "malformed JSON at byte offset 11: invalid UTF-8"});
  BOOST_CHECK_EXCEPTION(
      io::read_safetensors(dir / "absent"), fnn::io_error,
      (message_has{(dir / "absent").string() + ": cannot open for reading: No such file or directory"}));
}

BOOST_AUTO_TEST_CASE(accepts_unpadded_headers_and_header_padding) {
  fnn_test::temp_dir dir;
  const auto path = dir / "ok.safetensors";
  const std::string h = R"({"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"x":"y"}})";
  for (const std::string& header : {h, h + "  \n  "}) {
    fnn_test::write_file(path, raw_file(header, {0xFE, 0xFF, 0xFF, 0xFF}));
    const auto f = io::read_safetensors(path);
    BOOST_TEST(f.values<std::int32_t>("a", {1})[0] == -2);
    BOOST_TEST(f.metadata.at("x") == "y");
  }
}

// 80 000 metadata keys took 15 s before (a quadratic duplicate check); 200 000 now take a fraction of a second.
BOOST_AUTO_TEST_CASE(header_with_200k_metadata_keys_reads_fast) {
  fnn_test::temp_dir dir;
  const auto path = dir / "meta.safetensors";
  std::string header = R"({"__metadata__":{)";
  for (int i = 0; i < 200'000; ++i) header += (i ? ",\"key" : "\"key") + std::to_string(i) + "\":\"value\"";
  fnn_test::write_file(path, raw_file(header + "}}", {}));
  const auto t0 = std::chrono::steady_clock::now();
  const auto f = io::read_safetensors(path);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST(seconds < fnn_test::seconds_bound, "reading 200000 metadata keys took " << seconds << " s");
  BOOST_TEST(f.metadata.size() == 200'000u);
  BOOST_TEST(f.metadata.at("key199999") == "value");
}

// A header may hold at most 2^21 JSON values: a tensor of rank 2^21 - 4 (root, entry, dtype, shape array and
// the offsets take 7) is the largest that fits, one more dimension is refused before the parse goes on.
BOOST_AUTO_TEST_CASE(headers_beyond_the_value_limit_are_refused) {
  fnn_test::temp_dir dir;
  const auto path = dir / "wide.safetensors";
  const auto header = [](std::size_t rank) {
    std::string h = R"({"a":{"dtype":"F32","data_offsets":[0,0],"shape":[0)";
    for (std::size_t i = 1; i < rank; ++i) h += ",0";
    return h + "]}}";
  };
  const std::size_t limit = std::size_t{1} << 21;
  fnn_test::write_file(path, raw_file(header(limit - 7), {}));
  BOOST_TEST(io::read_safetensors(path).tensors.at(0).shape.size() == limit - 7);
  fnn_test::write_file(path, raw_file(header(limit - 6), {}));
  BOOST_CHECK_EXCEPTION(io::read_safetensors(path), fnn::io_error,
                        (message_has{path.string() + ": more than 2097152 JSON values, the reader's limit (the next "
                                                     "one starts at byte offset ",
                                     ") (in the header)"}));
}

BOOST_AUTO_TEST_CASE(duplicate_keys_are_refused) {
  fnn_test::temp_dir dir;
  const auto path = dir / "dup.safetensors";
  const std::string p = path.string() + ": ";
  fnn_test::write_file(path, raw_file(R"({"__metadata__":{"k":"a","k":"b"}})", {}));
  BOOST_CHECK_EXCEPTION(io::read_safetensors(path), fnn::io_error,
                        (message_has{p + "malformed JSON at byte offset 33: duplicate key \"k\" (in the header)"}));
  const std::string t = R"("x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]})";
  fnn_test::write_file(path, raw_file("{" + t + "," + t + "}", {7}));
  BOOST_CHECK_EXCEPTION(io::read_safetensors(path), fnn::io_error,
                        (message_has{p + "malformed JSON at byte offset " + std::to_string(8 + 1 + t.size() + 1) +
                                     ": duplicate key \"x\""}));
}

// The in-memory entry point (what the fuzzer drives) applies the same checks and names the input it is given.
BOOST_AUTO_TEST_CASE(parse_safetensors_from_memory) {
  fnn_test::temp_dir dir;
  const auto ts = sample_tensors();
  io::write_safetensors(dir / "m.safetensors", ts, {{"format", "pt"}});
  const bytes image = fnn_test::read_file(dir / "m.safetensors");
  const io::safetensors_file f = io::parse_safetensors(std::as_bytes(std::span(image)), "download");
  BOOST_TEST(f.path == "download");
  BOOST_TEST(f.metadata.at("format") == "pt");
  BOOST_TEST_REQUIRE(f.tensors.size() == ts.size());
  for (std::size_t i = 0; i < ts.size(); ++i)
    BOOST_TEST(as_u8(f.tensors[i].bytes) == as_u8(ts[i].bytes), boost::test_tools::per_element());
  const bytes cut(image.begin(), image.end() - 1);
  BOOST_CHECK_EXCEPTION(io::parse_safetensors(std::as_bytes(std::span(cut)), "download"), fnn::io_error,
                        (message_has{"download: ", "out of bounds of the"}));
  BOOST_CHECK_EXCEPTION(io::parse_safetensors({}, "nothing"), fnn::io_error,
                        (message_has{"nothing: file is 0 bytes, shorter than the 8-byte safetensors header length"}));
}

// A tensor too large for the memory left (a valid 64 MiB tensor, 16 MiB of address space left) is reported as
// io_error naming the file and the tensor, not as a bare std::bad_alloc.
BOOST_AUTO_TEST_CASE(out_of_memory_names_the_file_and_tensor,
                     *boost::unit_test::precondition(fnn_test::without_asan{})) {
  fnn_test::temp_dir dir;
  const auto path = dir / "huge.safetensors";
  const std::string header = R"({"big":{"dtype":"U8","shape":[67108864],"data_offsets":[0,67108864]}})";
  fnn_test::write_file(path, raw_file(header, {}));
  std::filesystem::resize_file(path, 8 + header.size() + (std::uintmax_t{1} << 26));  // sparse zeros
  fnn_test::address_space_limit limit(std::size_t{16} << 20);
  BOOST_CHECK_EXCEPTION(io::read_safetensors(path), fnn::io_error,
                        (message_has{path.string() + ": out of memory allocating 67108864 bytes for tensor 'big'"}));
}

BOOST_AUTO_TEST_SUITE_END()
