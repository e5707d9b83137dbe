// fnn-export's strict mapping and determinism, in-process (the compiled-header round trip is
// export_roundtrip.cpp, built from a header fnn-export writes at build time).
#include <unistd.h>

#include <bit>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>

#include "exporter.hpp"
#include "fnn/fnn.hpp"
#include "fnn/network/describe.hpp"
#include "helpers.hpp"

namespace {

using net_t = fnn::sequential<fnn::input<13>, fnn::dense<17>, fnn::batch_norm, fnn::leaky_relu<0.07>, fnn::dropout<0.2>,
                              fnn::dense<5>>;

using group_norm_net = fnn::sequential<fnn::input<20>, fnn::dense<12>, fnn::group_norm<3>, fnn::gelu, fnn::dense<4>>;

template <class Net = net_t>
struct saved_checkpoint {
  std::filesystem::path path;
  fnn::io::safetensors_file file;
  explicit saved_checkpoint(const std::string& name, bool with_layers = true) {
    path = std::filesystem::temp_directory_path() / ("fnn_deploy_export_" + std::to_string(::getpid()) + name);
    Net net{fnn::seed{4}};
    fnn_deploy_test::randomize(net, 5);
    fnn::io::metadata meta;
    if (with_layers) meta["fnn.layers"] = fnn::layers_text<Net>();
    fnn::io::save_model(path, net, meta);
    file = fnn::io::read_safetensors(path);
  }
  ~saved_checkpoint() { std::filesystem::remove(path); }
};

// The exporter's message, or "" when it succeeds.
std::string export_error(const fnn::io::safetensors_file& f, const fnn_export::options& o = {}) {
  try {
    (void)fnn_export::export_header(f, o);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  BOOST_TEST_INFO("message: " << s);
  return s.find(part) != std::string::npos;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(exporter)

BOOST_AUTO_TEST_CASE(same_checkpoint_same_bytes) {
  saved_checkpoint c("same");
  const std::string a = fnn_export::export_header(c.file, {}), b = fnn_export::export_header(c.file, {});
  BOOST_TEST(a == b);
  BOOST_TEST(contains(a, "fnn::deploy::dense<13, 17, fnn::deploy::act::leaky_relu<0x1.1eb851eb851ecp-4>>"));
  BOOST_TEST(!contains(a, c.path.parent_path().string()));  // no path, so a build directory does not show
}

BOOST_AUTO_TEST_CASE(a_missing_tensor_is_named_with_its_shape) {
  saved_checkpoint c("missing");
  std::erase_if(c.file.tensors, [](const auto& t) { return t.name == "1.running_var"; });
  BOOST_TEST(contains(export_error(c.file), "missing: 1.running_var F32 [17]"));
}

BOOST_AUTO_TEST_CASE(an_unused_tensor_is_an_error) {
  saved_checkpoint c("unused");
  auto extra = c.file.tensors.front();
  extra.name = "9.weight";
  c.file.tensors.push_back(extra);
  BOOST_TEST(contains(export_error(c.file), "unexpected: 9.weight F32 [17, 13]"));
}

BOOST_AUTO_TEST_CASE(a_wrong_shape_names_expected_and_found) {
  saved_checkpoint c("shape");
  fnn_export::options o;
  o.layers = "dense 13 16; batch_norm 16 16; relu 16 16; dropout 16 16; dense 16 5";
  const std::string e = export_error(c.file, o);
  BOOST_TEST(contains(e, "differs: expected 0.weight F32 [16, 13], found 0.weight F32 [17, 13]"));
  BOOST_TEST(contains(e, "differs: expected 4.weight F32 [5, 16], found 4.weight F32 [5, 17]"));
}

BOOST_AUTO_TEST_CASE(a_wrong_dtype_is_an_error) {
  saved_checkpoint c("dtype");
  for (auto& t : c.file.tensors)
    if (t.name == "0.bias") t.type = fnn::io::dtype::i32;
  BOOST_TEST(contains(export_error(c.file), "differs: expected 0.bias F32 [17], found 0.bias I32 [17]"));
}

BOOST_AUTO_TEST_CASE(layer_list_from_the_command_line_or_an_error) {
  saved_checkpoint c("nolayers", false);
  BOOST_TEST(contains(export_error(c.file), "no \"fnn.layers\""));
  fnn_export::options o;
  o.layers = "dense 13 17; batch_norm 17 17; leaky_relu 17 17 slope=0.07; dropout 17 17 p=0.2; dense 17 5";
  BOOST_TEST(export_error(c.file, o) == "");
  o.layers = "dense 13 17; batch_norm 17 17; leaky_relu 17 17 slop=0.07; dropout 17 17; dense 17 5";
  BOOST_TEST(contains(export_error(c.file, o), "layer 2 (leaky_relu) has no option \"slop\""));
  o.layers = "dense 13 17; batch_norm 17 17; mish 17 17; dropout 17 17; dense 17 5";
  BOOST_TEST(contains(export_error(c.file, o), "layer 2 names an unknown layer \"mish\""));
  o.layers = "dense 13 17; batch_norm 17 17; relu 17 17; dense 16 5";
  BOOST_TEST(contains(export_error(c.file, o), "layer 3 (dense) takes 16 features, layer 2 gives 17"));
}

// "group_norm <in> <out> groups=G" (fnn::layers_text's form) -> deploy::group_norm<in, G>, weight and bias [in] as
// its gamma and beta; the group count is required and must divide the width. (The compiled header's outputs are
// checked in export_roundtrip.cpp, whose mixed network has a group_norm.)
BOOST_AUTO_TEST_CASE(group_norm_entries) {
  saved_checkpoint<group_norm_net> c("group_norm");
  BOOST_TEST(c.file.metadata.at("fnn.layers") == "dense 20 12; group_norm 12 12 groups=3; gelu 12 12; dense 12 4");
  const std::string h = fnn_export::export_header(c.file, {});
  BOOST_TEST(contains(h,
                      "    fnn::deploy::dense<20, 12>,\n    fnn::deploy::group_norm<12, 3>,\n"
                      "    fnn::deploy::activation<12, fnn::deploy::act::gelu>,\n    fnn::deploy::dense<12, 4>>;"));
  BOOST_TEST(contains(h, "// 1: group norm, 3 groups (layer 1)"));
  BOOST_TEST(contains(h, "parameter_count == " + std::to_string(20 * 12 + 12 + 2 * 12 + 12 * 4 + 4)));
  fnn_export::options o;
  o.layers = "dense 20 12; group_norm 12 12; gelu 12 12; dense 12 4";
  BOOST_TEST(contains(export_error(c.file, o), "layer 1 (group_norm 12) needs groups=G, a divisor of 12"));
  o.layers = "dense 20 12; group_norm 12 12 groups=5; gelu 12 12; dense 12 4";
  BOOST_TEST(contains(export_error(c.file, o), "layer 1 (group_norm 12) needs groups=G, a divisor of 12"));
  o.layers = "dense 20 12; group_norm 12 12 groups=1.5; gelu 12 12; dense 12 4";
  BOOST_TEST(contains(export_error(c.file, o), "layer 1 (group_norm 12) needs groups=G, a divisor of 12"));
  o.layers = "dense 20 12; group_norm 12 12 groups=4; gelu 12 12; dense 12 4";  // another valid count
  BOOST_TEST(contains(fnn_export::export_header(c.file, o), "fnn::deploy::group_norm<12, 4>"));
  std::erase_if(c.file.tensors, [](const auto& t) { return t.name == "1.bias"; });
  BOOST_TEST(contains(export_error(c.file), "missing: 1.bias F32 [12]"));
}

BOOST_AUTO_TEST_CASE(hex_floats_round_trip_exactly) {
  for (float v : {0.1f, -0.0f, 1e-40f, 3.4028235e38f, -1.17549435e-38f, 0.33333334f}) {
    const std::string s = fnn_export::hex_float(v, "v");
    BOOST_TEST_INFO(s);
    BOOST_TEST(std::bit_cast<std::uint32_t>(std::strtof(s.c_str(), nullptr)) == std::bit_cast<std::uint32_t>(v));
  }
  std::string e;
  try {
    (void)fnn_export::hex_float(std::numeric_limits<float>::infinity(), "0.weight[3]");
  } catch (const std::exception& x) {
    e = x.what();
  }
  BOOST_TEST(contains(e, "0.weight[3] is not finite"));
}

BOOST_AUTO_TEST_SUITE_END()
