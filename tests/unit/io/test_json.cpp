// The small JSON reader/writer under safetensors headers.
#include <boost/test/unit_test.hpp>
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

BOOST_AUTO_TEST_SUITE_END()
