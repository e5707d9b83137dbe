// libFuzzer harness for the IDX reader and its gzip layer (io/idx.hpp, io/gzip.hpp) through the in-memory
// entry point. Properties beyond "no crash, no leak, no undefined behaviour, no hang": every error is an
// io_error naming the input, and an accepted file holds exactly the elements its dimensions promise.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fnn/io/idx.hpp"
#include "fuzz_support.hpp"

namespace io = fnn::io;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr const char* name = "fuzz-input.idx";
  io::idx_array a;
  try {
    a = io::parse_idx(std::as_bytes(std::span(data, size)), name);
  } catch (const fnn::io_error& e) {
    fnn_fuzz::check_names_input(e, name);
    return 0;
  }
  std::size_t n = 1;
  for (std::size_t d : a.dims) n *= d;  // cannot overflow: the reader checked it and holds the bytes
  fnn_fuzz::check(!a.dims.empty() && a.size() == n && a.data.size() == n * io::idx_type_size(a.type),
                  "the payload does not hold what the dimensions promise", io::dims_text(a.dims));
  return 0;
}
