// libFuzzer harness for the safetensors reader (io/safetensors_read.hpp) through its in-memory entry point.
// Properties beyond "no crash, no leak, no undefined behaviour, no hang": every error is an io_error naming
// the input; an accepted file accounts for every data byte, and writing what was read and reading it back
// gives the same tensors and metadata.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fnn/io/safetensors.hpp"
#include "fuzz_support.hpp"

namespace io = fnn::io;

namespace {

constexpr const char* name = "fuzz-input.safetensors";

void check_consistent(const io::safetensors_file& f, std::size_t size) {
  std::uint64_t total = 0;
  for (const auto& t : f.tensors) {
    const auto n = t.numel();
    fnn_fuzz::check(n.has_value() && *n * io::dtype_size(t.type) == t.bytes.size(),
                    "a tensor's bytes do not match its shape and dtype", t.name);
    total += t.bytes.size();
  }
  fnn_fuzz::check(total <= size, "the tensors hold more bytes than the input");
}

// Writes what was read (the writer's own layout: header order, packed) and reads it back.
void check_round_trip(const io::safetensors_file& f) {
  for (const auto& t : f.tensors)
    if (t.name.empty()) return;  // the reader tolerates what the writer refuses to make (an empty name)
  const std::string header = io::detail::safetensors_header(f.tensors, f.metadata);
  std::vector<std::byte> image(8);
  for (std::size_t i = 0; i < 8; ++i) image[i] = static_cast<std::byte>((header.size() >> (8 * i)) & 0xFF);
  const auto h = std::as_bytes(std::span(header));
  image.insert(image.end(), h.begin(), h.end());
  for (const auto& t : f.tensors) image.insert(image.end(), t.bytes.begin(), t.bytes.end());
  io::safetensors_file again;
  try {
    again = io::parse_safetensors(image, "rewritten");
  } catch (const fnn::io_error& e) {
    fnn_fuzz::property_failed("a file written from what was read does not read back", e.what());
  }
  fnn_fuzz::check(again.metadata == f.metadata, "the metadata changed in a round trip");
  fnn_fuzz::check(again.tensors.size() == f.tensors.size(), "the tensor count changed in a round trip");
  for (std::size_t i = 0; i < f.tensors.size(); ++i) {
    const auto& a = f.tensors[i];
    const auto& b = again.tensors[i];
    fnn_fuzz::check(a.name == b.name && a.type == b.type && a.shape == b.shape && a.bytes == b.bytes,
                    "a tensor changed in a round trip", a.name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  io::safetensors_file f;
  try {
    f = io::parse_safetensors(std::as_bytes(std::span(data, size)), name);
  } catch (const fnn::io_error& e) {
    fnn_fuzz::check_names_input(e, name);
    return 0;
  }
  check_consistent(f, size);
  check_round_trip(f);
  return 0;
}
