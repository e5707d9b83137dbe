#pragma once
// A small, strict JSON reader and writer: enough for safetensors headers and checkpoint metadata.
// Objects keep their key order (a header written twice is byte-identical) and reject duplicate keys
// (two different answers to "what is tensor x?" are a corrupt file, not a choice to make silently).
// Numbers keep their text, so 64-bit offsets never pass through a double.
// The cost is O(n log n) in the number of members of an object and bounded by parse_limits, so that a hostile
// header (a safetensors header may be 100 MB) costs at most a fraction of a second and a bounded amount of memory.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fnn/core/errors.hpp"

namespace fnn::io::json {

class value;
using array = std::vector<value>;
using object = std::vector<std::pair<std::string, value>>;

struct number {
  std::string text;  // as written, validated against the JSON grammar
};

class value final {
 public:
  value() = default;
  value(std::nullptr_t) {}
  value(bool b) : v_(b) {}
  value(number n) : v_(std::move(n)) {}
  value(std::string s) : v_(std::move(s)) {}
  value(const char* s) : v_(std::string(s)) {}
  value(array a) : v_(std::move(a)) {}
  value(object o) : v_(std::move(o)) {}
  static value integer(std::uint64_t n) { return number{std::to_string(n)}; }

  bool is_null() const noexcept { return v_.index() == 0; }
  bool is_bool() const noexcept { return v_.index() == 1; }
  bool is_number() const noexcept { return v_.index() == 2; }
  bool is_string() const noexcept { return v_.index() == 3; }
  bool is_array() const noexcept { return v_.index() == 4; }
  bool is_object() const noexcept { return v_.index() == 5; }
  std::string_view kind_name() const noexcept {
    constexpr std::string_view names[] = {"null", "boolean", "number", "string", "array", "object"};
    return names[v_.index()];
  }

  bool as_bool() const { return get<bool>("boolean"); }
  const number& as_number() const { return get<number>("number"); }
  const std::string& as_string() const { return get<std::string>("string"); }
  const array& as_array() const { return get<array>("array"); }
  const object& as_object() const { return get<object>("object"); }

  // The member named key of an object, or nullptr.
  const value* find(std::string_view key) const {
    for (const auto& [k, v] : as_object())
      if (k == key) return &v;
    return nullptr;
  }

 private:
  template <class T>
  const T& get(std::string_view expected) const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    throw value_error("JSON type mismatch: expected " + std::string(expected) + ", got " + std::string(kind_name()));
  }

  std::variant<std::monostate, bool, number, std::string, array, object> v_;
};

// The number as an unsigned 64-bit integer, or nothing if it is negative, fractional, or too large.
inline std::optional<std::uint64_t> to_u64(const number& n) {
  std::uint64_t out = 0;
  const char* end = n.text.data() + n.text.size();
  const auto [ptr, ec] = std::from_chars(n.text.data(), end, out);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return out;
}

// What one document may hold. Deeper nesting would make the recursive parser's stack depth the attacker's
// choice; more values, its memory (a value is ~40 bytes plus its text, 20 times the 2 bytes of "0,").
struct parse_limits {
  std::size_t max_depth = 64;
  std::size_t max_values = std::numeric_limits<std::size_t>::max();
};

namespace detail {

class parser final {
 public:
  parser(std::string_view text, std::size_t base, parse_limits limits) : text_(text), base_(base), limits_(limits) {}

  value document() {
    skip_space();
    value v = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected character after the end of the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw value_error("malformed JSON at byte offset " + std::to_string(base_ + pos_) + ": " + what);
  }
  bool at_end() const noexcept { return pos_ >= text_.size(); }
  unsigned char peek() const noexcept { return at_end() ? 0 : static_cast<unsigned char>(text_[pos_]); }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }
  void expect(char c) {
    if (peek() != static_cast<unsigned char>(c) || at_end()) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  value parse_value(std::size_t depth) {
    if (depth > limits_.max_depth) fail("nesting deeper than " + std::to_string(limits_.max_depth));
    if (++values_ > limits_.max_values)
      throw value_error("more than " + std::to_string(limits_.max_values) +
                        " JSON values, the reader's limit (the next one starts at byte offset " +
                        std::to_string(base_ + pos_) + ")");
    if (at_end()) fail("unexpected end of input");
    switch (peek()) {
      case '{':
        return parse_object(depth);
      case '[':
        return parse_array(depth);
      case '"':
        return parse_string();
      case 't':
        return literal("true", true);
      case 'f':
        return literal("false", false);
      case 'n':
        return literal("null", nullptr);
      default:
        return parse_number();
    }
  }

  value literal(std::string_view word, value v) {
    if (text_.substr(pos_, word.size()) != word) fail("invalid literal");
    pos_ += word.size();
    return v;
  }

  // Duplicates are found by sorting once the object is complete: O(n log n) where a scan per key was O(n^2)
  // (80 000 keys took 15 s). A hash set would be O(n) on average but O(n^2) on keys crafted to collide.
  void check_unique_keys(const object& members, const std::vector<std::size_t>& key_offsets) {
    std::vector<std::size_t> order(members.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const int c = members[a].first.compare(members[b].first);
      return c != 0 ? c < 0 : a < b;
    });
    // The first repetition in file order, as a reader scanning the text would meet it.
    std::size_t first = members.size();
    for (std::size_t i = 1; i < order.size(); ++i)
      if (members[order[i]].first == members[order[i - 1]].first) first = std::min(first, order[i]);
    if (first == members.size()) return;
    pos_ = key_offsets[first];
    fail("duplicate key \"" + members[first].first + "\"");
  }

  value parse_object(std::size_t depth) {
    object members;
    std::vector<std::size_t> key_offsets;
    expect('{');
    skip_space();
    if (peek() == '}' && !at_end()) {
      ++pos_;
      return members;
    }
    for (;;) {
      skip_space();
      const std::size_t key_at = pos_;
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      key_offsets.push_back(key_at);
      skip_space();
      expect(':');
      skip_space();
      members.emplace_back(std::move(key), parse_value(depth + 1));
      skip_space();
      if (peek() == ',' && !at_end()) {
        ++pos_;
        continue;
      }
      expect('}');
      check_unique_keys(members, key_offsets);
      return members;
    }
  }

  value parse_array(std::size_t depth) {
    array items;
    expect('[');
    skip_space();
    if (peek() == ']' && !at_end()) {
      ++pos_;
      return items;
    }
    for (;;) {
      skip_space();
      items.push_back(parse_value(depth + 1));
      skip_space();
      if (peek() == ',' && !at_end()) {
        ++pos_;
        continue;
      }
      expect(']');
      return items;
    }
  }

  std::size_t digits() {
    const std::size_t start = pos_;
    while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ - start;
  }

  value parse_number() {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0' && !at_end()) {
      ++pos_;
    } else if (digits() == 0) {
      pos_ = start;
      fail("expected a value");
    }
    if (peek() == '.' && !at_end()) {
      ++pos_;
      if (digits() == 0) fail("expected a digit after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail("expected a digit in the exponent");
    }
    return number{std::string(text_.substr(start, pos_ - start))};
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const unsigned char c = peek();
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0 || at_end()) fail("expected 4 hex digits after \\u");
      v = v * 16 + static_cast<unsigned>(d);
    }
    return v;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    auto put = [&](std::uint32_t b) { out += static_cast<char>(b); };
    if (cp < 0x80) {
      put(cp);
    } else if (cp < 0x800) {
      put(0xC0 | (cp >> 6)), put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      put(0xE0 | (cp >> 12)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
    } else {
      put(0xF0 | (cp >> 18)), put(0x80 | ((cp >> 12) & 0x3F)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
    }
  }

  void escape(std::string& out) {
    ++pos_;  // the backslash
    const unsigned char c = peek();
    if (at_end()) fail("unterminated escape");
    ++pos_;
    switch (c) {
      case '"':
        out += '"';
        return;
      case '\\':
        out += '\\';
        return;
      case '/':
        out += '/';
        return;
      case 'b':
        out += '\b';
        return;
      case 'f':
        out += '\f';
        return;
      case 'n':
        out += '\n';
        return;
      case 'r':
        out += '\r';
        return;
      case 't':
        out += '\t';
        return;
      case 'u':
        break;
      default:
        --pos_, fail("invalid escape");
    }
    std::uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (text_.substr(pos_, 2) != "\\u") fail("high surrogate without its low half");
      pos_ += 2;
      const std::uint32_t low = hex4();
      if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate without its low half");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
  }

  // Length of the valid UTF-8 sequence at pos_, 0 if invalid (overlong, surrogate, beyond U+10FFFF, cut).
  std::size_t utf8_length() const {
    const unsigned char c = peek();
    const std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || pos_ + n > text_.size()) return 0;
    std::uint32_t cp = c & (0x7F >> n);
    for (std::size_t i = 1; i < n; ++i) {
      const auto b = static_cast<unsigned char>(text_[pos_ + i]);
      if ((b & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (b & 0x3F);
    }
    const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
    if (overlong || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return n;
  }

  std::string parse_string() {
    std::string out;
    ++pos_;  // the opening quote
    for (;;) {
      if (at_end()) fail("unterminated string");
      const unsigned char c = peek();
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        escape(out);
      } else if (c < 0x20) {
        fail("control character in a string");
      } else if (c < 0x80) {
        out += static_cast<char>(c), ++pos_;
      } else {
        const std::size_t n = utf8_length();
        if (n == 0) fail("invalid UTF-8");
        out.append(text_.substr(pos_, n)), pos_ += n;
      }
    }
  }

  std::string_view text_;
  std::size_t base_;
  parse_limits limits_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
};

inline void dump_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\', out += ch;
    } else if (c < 0x20) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\u00", out += hex[c >> 4], out += hex[c & 0xF];
    } else {
      out += ch;
    }
  }
  out += '"';
}

inline void dump_to(std::string& out, const value& v) {
  if (v.is_null()) {
    out += "null";
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (v.is_number()) {
    out += v.as_number().text;
  } else if (v.is_string()) {
    dump_string(out, v.as_string());
  } else if (v.is_array()) {
    out += '[';
    for (std::size_t i = 0; i < v.as_array().size(); ++i) {
      if (i) out += ',';
      dump_to(out, v.as_array()[i]);
    }
    out += ']';
  } else {
    out += '{';
    bool first = true;
    for (const auto& [k, m] : v.as_object()) {
      if (!first) out += ',';
      first = false;
      dump_string(out, k);
      out += ':';
      dump_to(out, m);
    }
    out += '}';
  }
}

}  // namespace detail

// Parses one JSON document (surrounding whitespace allowed). Errors are value_error messages
// "malformed JSON at byte offset N: ...", where N counts from offset_base (e.g. the position of the
// text inside a file); too many values gives "more than M JSON values, the reader's limit (...)".
inline value parse(std::string_view text, std::size_t offset_base = 0, parse_limits limits = {}) {
  return detail::parser(text, offset_base, limits).document();
}

// Compact JSON (no spaces), object members in their stored order.
inline std::string dump(const value& v) {
  std::string out;
  detail::dump_to(out, v);
  return out;
}

}  // namespace fnn::io::json
