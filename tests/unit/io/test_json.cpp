// The small JSON reader/writer under safetensors headers.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <string>

#include "fnn/io/json.hpp"
#include "io_test_support.hpp"

namespace json = fnn::io::json;
using fnn_test::message_has;

BOOST_AUTO_TEST_SUITE(json_text)

BOOST_AUTO_TEST_CASE(parses_nested_values_in_order) {
  const json::value v = json::parse(R"( {"b": [1, -2.5e3, true, null], "a": {"s": "x\"y\\\n\u00e9\ud83d\ude00"}} )");
  BOOST_TEST_REQUIRE(v.is_object());
  BOOST_TEST(v.as_object()[0].first == "b");  // file order, not sorted
  BOOST_TEST(v.as_object()[1].first == "a");
  const auto& b = v.find("b")->as_array();
  BOOST_TEST(b.size() == 4);
  BOOST_TEST(b[0].as_number().text == "1");
  BOOST_TEST(b[1].as_number().text == "-2.5e3");
  BOOST_TEST(b[2].as_bool());
  BOOST_TEST(b[3].is_null());
  BOOST_TEST(v.find("a")->find("s")->as_string() == "x\"y\\\n\xc3\xa9\xf0\x9f\x98\x80");
  BOOST_TEST(v.find("missing") == nullptr);
  BOOST_CHECK_EXCEPTION(v.find("b")->as_string(), fnn::value_error,
                        (message_has{"JSON type mismatch: expected string, got array"}));
}

BOOST_AUTO_TEST_CASE(integers_keep_64_bits) {
  const json::value v = json::parse("[18446744073709551615, 9007199254740993, -1, 1.0, 1e2, 18446744073709551616]");
  const auto& a = v.as_array();
  BOOST_TEST(json::to_u64(a[0].as_number()).value() == 18446744073709551615ull);
  BOOST_TEST(json::to_u64(a[1].as_number()).value() == 9007199254740993ull);  // not representable as a double
  BOOST_TEST(!json::to_u64(a[2].as_number()).has_value());
  BOOST_TEST(!json::to_u64(a[3].as_number()).has_value());
  BOOST_TEST(!json::to_u64(a[4].as_number()).has_value());
  BOOST_TEST(!json::to_u64(a[5].as_number()).has_value());
}

BOOST_AUTO_TEST_CASE(dump_round_trips) {
  const std::string text = R"({"k":[0,-1.5,"a\"b\\c\u0001",{},[],false,null],"\u00e9":"\u00e9"})";
  const json::value v = json::parse(text);
  BOOST_TEST(json::dump(v) == R"({"k":[0,-1.5,"a\"b\\c\u0001",{},[],false,null],")"
                              "\xc3\xa9\":\"\xc3\xa9\"}");
  BOOST_TEST(json::dump(json::parse(json::dump(v))) == json::dump(v));
}

BOOST_AUTO_TEST_CASE(errors_name_the_offset) {
  const auto check = [](const std::string& text, std::initializer_list<std::string> fragments) {
    BOOST_CHECK_EXCEPTION(json::parse(text, 8), fnn::value_error, message_has(fragments));
  };
  check(R"({"a": 1,})", {"malformed JSON at byte offset 16: expected a string key"});
  check(R"({"a": 1, "a": 2})", {"malformed JSON at byte offset 17: duplicate key \"a\""});
  check(R"(["abc)", {"malformed JSON at byte offset 13: unterminated string"});
  check("[\"a\tb\"]", {"malformed JSON at byte offset 11: control character in a string"});
  check("[\"\xff\"]", {"malformed JSON at byte offset 10: invalid UTF-8"});
  check("[\"\xc0\xaf\"]", {"invalid UTF-8"});  // overlong '/'
  check(R"(["\ud800"])", {"high surrogate without its low half"});
  check("[01]", {"malformed JSON at byte offset 10: expected ']'"});
  check("{} x", {"malformed JSON at byte offset 11: unexpected character after the end of the JSON value"});
  check("[tru]", {"invalid literal"});
  check("", {"malformed JSON at byte offset 8: unexpected end of input"});
  check(std::string(100, '['), {"nesting deeper than 64"});
  check("[-]", {"malformed JSON at byte offset 9: expected a value"});
  check("[1.]", {"expected a digit after '.'"});
}

// Duplicate keys were found by a scan of the previous keys per key: 200 000 keys took tens of seconds. Sorted
// once per object, they take a small fraction of a second; the bound (3 s, 10 s
// under the sanitizers) leaves room for a loaded machine.
BOOST_AUTO_TEST_CASE(many_keys_parse_in_well_under_a_second) {
  const std::size_t n = 200'000;
  std::string text = "{";
  for (std::size_t i = 0; i < n; ++i) text += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"v\"";
  const auto t0 = std::chrono::steady_clock::now();
  const json::value v = json::parse(text + "}");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST(seconds < fnn_test::seconds_bound, "200000 keys took " << seconds << " s");
  BOOST_TEST_REQUIRE(v.as_object().size() == n);
  BOOST_TEST(v.as_object()[123456].first == "k123456");  // file order kept
  // A repeat far from its first occurrence is still found, at the offset of the repeat.
  const std::string dup = text + ",\"k7\":\"w\"}";
  BOOST_CHECK_EXCEPTION(json::parse(dup), fnn::value_error,
                        (message_has{"malformed JSON at byte offset " + std::to_string(text.size() + 1) +
                                     ": duplicate key \"k7\""}));
}

BOOST_AUTO_TEST_CASE(duplicates_are_reported_in_file_order) {
  // "b" repeats (at offset 13) before "a" does (at 19); nested objects are checked on their own.
  BOOST_CHECK_EXCEPTION(json::parse(R"({"b":1,"a":2,"b":3,"a":4})"), fnn::value_error,
                        (message_has{"malformed JSON at byte offset 13: duplicate key \"b\""}));
  BOOST_CHECK_EXCEPTION(json::parse(R"({"x":{"a":1,"a":1},"x":0})"), fnn::value_error,
                        (message_has{"malformed JSON at byte offset 12: duplicate key \"a\""}));
  BOOST_CHECK_EXCEPTION(json::parse(R"({"a":1,"b":2,"c":3,"c":4,"b":5})"), fnn::value_error,
                        (message_has{"offset 19: duplicate key \"c\""}));
  // Same key in sibling objects, and keys that differ only after a shared prefix or by an escape, are distinct.
  BOOST_TEST(json::parse(R"([{"a":1},{"a":2}])").as_array().size() == 2);
  BOOST_TEST(json::parse(R"({"ab":1,"a":2,"a\u0000":3,"abc":4})").as_object().size() == 4);
  BOOST_CHECK_EXCEPTION(json::parse(R"({"\u0061":1,"a":2})"), fnn::value_error,
                        (message_has{"offset 12: duplicate key \"a\""}));  // the same key, escaped
}

BOOST_AUTO_TEST_CASE(limits_bound_values_and_depth) {
  const json::parse_limits three{.max_depth = 64, .max_values = 3};
  BOOST_TEST(json::parse("[1, 2]", 0, three).as_array().size() == 2);  // the array and two numbers
  BOOST_CHECK_EXCEPTION(json::parse("[1, 2, 3]", 100, three), fnn::value_error,
                        (message_has{"more than 3 JSON values, the reader's limit (the next one starts at byte "
                                     "offset 107)"}));
  BOOST_CHECK_EXCEPTION(json::parse(R"({"a":{"b":[]}})", 0, {.max_depth = 1, .max_values = 100}), fnn::value_error,
                        (message_has{"malformed JSON at byte offset 10: nesting deeper than 1"}));
  BOOST_TEST(json::parse(R"({"a":{"b":1}})", 0, {.max_depth = 2, .max_values = 100}).is_object());
}

BOOST_AUTO_TEST_SUITE_END()
