// libFuzzer harness for the JSON reader under safetensors headers (io/json.hpp). Properties beyond "no crash,
// no leak, no undefined behaviour, no hang": errors are value_error with an offset inside the input, and any
// accepted document survives dump -> parse -> dump unchanged.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fnn/io/json.hpp"
#include "fuzz_support.hpp"

namespace json = fnn::io::json;

namespace {

// The offset N in "... at byte offset N..." (both the malformed and the limit messages carry one).
void check_offset(std::string_view what, std::size_t size) {
  const std::string_view key = "byte offset ";
  const std::size_t at = what.find(key);
  fnn_fuzz::check(at != std::string_view::npos, "the error names no byte offset", what);
  std::size_t offset = 0;
  const char* first = what.data() + at + key.size();
  const auto [end, ec] = std::from_chars(first, what.data() + what.size(), offset);
  fnn_fuzz::check(ec == std::errc{} && end != first, "the byte offset is not a number", what);
  fnn_fuzz::check(offset <= size, "the byte offset lies beyond the input", what);
}

// Walks the document the way the safetensors reader does (find, to_u64, typed access on matching kinds).
void walk(const json::value& v) {
  if (v.is_object()) {
    for (const auto& [k, m] : v.as_object()) {
      fnn_fuzz::check(v.find(k) == &m, "find() does not return the first member of a key", k);
      walk(m);
    }
  } else if (v.is_array()) {
    for (const auto& item : v.as_array()) walk(item);
  } else if (v.is_number()) {
    (void)json::to_u64(v.as_number());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  json::value v;
  try {
    // The safetensors reader's limits, scaled down with the input so that a run never spends its memory here.
    v = json::parse(text, 0, {.max_depth = 64, .max_values = 1 << 16});
  } catch (const fnn::value_error& e) {
    check_offset(e.what(), size);
    return 0;
  }
  walk(v);
  const std::string once = json::dump(v);
  std::string twice;
  try {
    twice = json::dump(json::parse(once));
  } catch (const fnn::value_error& e) {
    fnn_fuzz::property_failed("the dump of an accepted document does not parse", e.what());
  }
  fnn_fuzz::check(once == twice, "dump -> parse -> dump changed the document", once);
  return 0;
}
