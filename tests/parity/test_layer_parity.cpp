// fnn::group_norm against torch.nn.GroupNorm (gen_layers.py): output, input gradient and the gradients of
// the affine, in double, for one group (layer norm), groups of one feature (instance norm) and in between.
#define BOOST_TEST_MODULE fnn_layer_parity
#define BOOST_TEST_NO_MAIN
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "fnn/layers/group_norm.hpp"
#include "fnn/network/sequential.hpp"

namespace {

struct group_norm_case {
  std::string name;
  std::size_t n = 0, c = 0, groups = 0;
  std::vector<double> x, gamma, beta, dy, y, dx, dgamma, dbeta;
};

std::vector<double> read_row(std::istream& in, std::size_t count) {
  std::vector<double> v(count);
  for (auto& e : v) {
    std::string w;
    in >> w;
    e = std::strtod(w.c_str(), nullptr);
  }
  if (!in) throw std::runtime_error("layer parity data: truncated");
  return v;
}

const std::vector<group_norm_case>& cases() {
  static const std::vector<group_norm_case> all = [] {
    std::vector<group_norm_case> r;
    std::ifstream in(FNN_LAYER_PARITY_DATA);
    if (!in) throw std::runtime_error("cannot open " FNN_LAYER_PARITY_DATA);
    std::string tag;
    while (in >> tag) {
      if (tag != "group_norm") throw std::runtime_error("layer parity data: unknown record " + tag);
      group_norm_case k;
      in >> k.name >> k.n >> k.c >> k.groups;
      const std::size_t nc = k.n * k.c;
      k.x = read_row(in, nc), k.gamma = read_row(in, k.c), k.beta = read_row(in, k.c), k.dy = read_row(in, nc);
      k.y = read_row(in, nc), k.dx = read_row(in, nc), k.dgamma = read_row(in, k.c), k.dbeta = read_row(in, k.c);
      r.push_back(std::move(k));
    }
    return r;
  }();
  return all;
}

void expect_close(const std::string& what, std::span<const double> got, const std::vector<double>& want) {
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double err = std::abs(got[i] - want[i]) / std::max(std::abs(want[i]), 1.0);
    if (err > 1e-10) BOOST_ERROR(what << "[" << i << "]: fnn " << got[i] << " torch " << want[i]);
  }
}

std::vector<double> flat(fnn::const_matrix_view<double> m) {  // row by row: a view's rows may be padded
  std::vector<double> v;
  for (fnn::index_t i = 0; i < m.rows(); ++i)
    for (fnn::index_t j = 0; j < m.cols(); ++j) v.push_back(m(i, j));
  return v;
}

template <std::size_t C, std::size_t Groups>
void run(const std::string& name) {
  const group_norm_case* k = nullptr;
  for (const auto& c : cases())
    if (c.name == name) k = &c;
  BOOST_TEST_REQUIRE(k != nullptr, "no case " << name << " in the data");
  BOOST_TEST_REQUIRE((k->c == C && k->groups == Groups));
  fnn::basic_sequential<double, fnn::input<C>, fnn::group_norm<Groups>> net;
  net.for_each_parameter([&](auto& p) {
    const auto& src = p.suffix == "weight" ? k->gamma : k->beta;
    std::copy(src.begin(), src.end(), p.value.begin());
  });
  const auto rows = fnn::index_t(k->n);
  fnn::matrix<double> x(rows, fnn::index_t(C)), dy(rows, fnn::index_t(C));
  std::copy(k->x.begin(), k->x.end(), x.flat().begin());
  std::copy(k->dy.begin(), k->dy.end(), dy.flat().begin());
  net.zero_grad();
  const auto y = net.forward(x.view(), fnn::mode::train);
  expect_close(name + " y", flat(y), k->y);
  net.backward(dy.view(), true);
  const auto dx = net.input_gradient();
  expect_close(name + " dx", flat(dx), k->dx);
  net.for_each_parameter([&](auto& p) {
    const bool w = p.suffix == "weight";
    expect_close(name + (w ? " dgamma" : " dbeta"), std::span<const double>(p.grad), w ? k->dgamma : k->dbeta);
  });
  BOOST_TEST_MESSAGE("group_norm " << name << ": matches torch.nn.GroupNorm(" << Groups << ", " << C << ")");
}

}  // namespace

BOOST_AUTO_TEST_CASE(group_norm_matches_torch) {
  BOOST_TEST_REQUIRE(cases().size() == 4u);
  run<12, 3>("g3_c12");
  run<12, 1>("g1_c12");
  run<6, 6>("g6_c6");
  run<20, 4>("g4_c20_offset");
}

int main(int argc, char* argv[]) {
  const std::string cmd = std::string(FNN_TEST_PYTHON) + " " + FNN_LAYER_PARITY_SCRIPT + " " + FNN_LAYER_PARITY_DATA;
  const int rc = std::system(cmd.c_str());
  const int code = (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
  if (code == 77) {
    std::cout << "fnn_layer_parity_tests SKIPPED: torch is not importable by " << FNN_TEST_PYTHON << "\n";
    return 77;
  }
  if (code != 0) {
    std::cerr << "fnn_layer_parity_tests: '" << cmd << "' failed with " << code << "\n";
    return 1;
  }
  return boost::unit_test::unit_test_main(&::init_unit_test, argc, argv);
}
