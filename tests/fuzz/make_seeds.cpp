// Writes the fuzzers' seed corpora: small VALID inputs, so that libFuzzer starts from the structure of real
// files instead of having to discover it. Built with the main compiler and run by the build, so no binary
// file is committed. Usage: fnn_fuzz_seeds <dir>; fills <dir>/json, <dir>/safetensors and <dir>/idx.
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fnn/io/json.hpp"
#include "fnn/io/safetensors.hpp"

namespace fs = std::filesystem;
namespace io = fnn::io;
using bytes = std::vector<std::uint8_t>;

namespace {

void write(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}
void write(const fs::path& p, const bytes& data) { write(p, std::string(data.begin(), data.end())); }

bytes gzip(const bytes& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
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

bytes idx(std::uint8_t type, const std::vector<std::uint32_t>& dims, std::size_t elem) {
  bytes out{0, 0, type, static_cast<std::uint8_t>(dims.size())};
  std::size_t n = elem;
  for (std::uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(d >> s));
    n *= d;
  }
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(i * 37 + 11));
  return out;
}

void json_seeds(const fs::path& dir) {
  write(dir / "header.json",
        R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})");
  write(dir / "values.json", R"([0, -1, 1.5e-3, 18446744073709551615, true, false, null, "", {}, []])");
  write(dir / "strings.json", R"({"esc":"\"\\\/\b\f\n\r\t","u":"\u00e9\ud83d\ude00","utf8":"é€😀"})");
  write(dir / "nested.json", R"( {"a" : [ {"b" : [ [ 1 ] ] } ] , "c" : { } } )");
  write(dir / "dump.json", io::json::dump(io::json::value(io::json::object{{"k", io::json::array{true, "x", io::json::value::integer(42)}}})));
}

void safetensors_seeds(const fs::path& dir) {
  const std::vector<float> w{0.5f, -1.25f, 3.0f, 7.0f, -0.0f, 65504.0f};
  const std::vector<std::int64_t> ix{-3, 0, 9};
  const std::vector<std::uint8_t> u8{0, 255};
  io::write_safetensors(dir / "one.safetensors", std::vector{io::make_tensor("x", {}, std::vector<float>{1.0f})});
  io::write_safetensors(dir / "several.safetensors",
                        std::vector{io::make_tensor("layer.0.weight", {2, 3}, w), io::make_tensor("idx", {3}, ix),
                                    io::make_tensor("u8", {1, 2}, u8),
                                    io::make_tensor("empty", {0, 4}, std::vector<double>{})},
                        {{"format", "pt"}, {"note", "seed"}});
  std::vector<io::tensor_entry> bf16{
      io::tensor_entry{"h", io::dtype::bf16, {2}, {std::byte{0x80}, std::byte{0x3F}, std::byte{0}, std::byte{0xC0}}}};
  io::write_safetensors(dir / "bf16.safetensors", bf16);
  io::write_safetensors(dir / "nothing.safetensors", std::vector<io::tensor_entry>{});
}

void idx_seeds(const fs::path& dir) {
  const bytes u8 = idx(0x08, {3, 2, 2}, 1);
  write(dir / "u8-3d.idx", u8);
  write(dir / "u8-3d.idx.gz", gzip(u8));
  write(dir / "i16.idx", idx(0x0B, {2, 1}, 2));
  write(dir / "i32.idx.gz", gzip(idx(0x0C, {3}, 4)));
  write(dir / "f32.idx", idx(0x0D, {1, 2}, 4));
  write(dir / "f64.idx.gz", gzip(idx(0x0E, {2}, 8)));
  write(dir / "labels.idx", idx(0x08, {10}, 1));
  const bytes two = idx(0x09, {40}, 1);  // two gzip members back to back, as `cat a.gz b.gz` makes
  bytes multi = gzip(bytes(two.begin(), two.begin() + 17));
  const bytes tail = gzip(bytes(two.begin() + 17, two.end()));
  multi.insert(multi.end(), tail.begin(), tail.end());
  write(dir / "i8-two-members.idx.gz", multi);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  try {
    const fs::path root = argv[1];
    for (const char* d : {"json", "safetensors", "idx"}) fs::create_directories(root / d);
    json_seeds(root / "json");
    safetensors_seeds(root / "safetensors");
    idx_seeds(root / "idx");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn_fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
