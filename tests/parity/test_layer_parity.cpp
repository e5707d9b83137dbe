// fnn::group_norm against torch.nn.GroupNorm (gen_layers.py): output, input gradient and the gradients of
// the affine, in double, for one group (layer norm), groups of one feature (instance norm) and in between.
// A frozen batch_norm (net.freeze) against a torch BatchNorm1d put in eval() with requires_grad_(False) inside a
// training model: output, every gradient, the running statistics left alone; fused and unfused.
#define BOOST_TEST_MODULE fnn_layer_parity
#define BOOST_TEST_NO_MAIN
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fnn/layers/activations.hpp"
#include "fnn/layers/batch_norm.hpp"
#include "fnn/layers/dense.hpp"
#include "fnn/layers/group_norm.hpp"
#include "fnn/network/sequential.hpp"

namespace {

struct group_norm_case {
  std::string name;
  std::size_t n = 0, c = 0, groups = 0;
  std::vector<double> x, gamma, beta, dy, y, dx, dgamma, dbeta;
};

struct frozen_batch_norm_case {
  std::string name;
  std::size_t n = 0, in = 0, hidden = 0, out = 0;
  std::vector<double> x, w0, b0, gamma, beta, running_mean, running_var, w3, b3, dy;
  std::vector<double> y, dx, dw0, db0, dw3, db3, running_mean_after, running_var_after;
  std::int64_t batches_tracked = 0;
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

struct parity_data {
  std::vector<group_norm_case> group_norm;
  std::vector<frozen_batch_norm_case> frozen_batch_norm;
};

frozen_batch_norm_case read_frozen_batch_norm(std::istream& in) {
  frozen_batch_norm_case k;
  in >> k.name >> k.n >> k.in >> k.hidden >> k.out;
  const std::size_t n = k.n, i = k.in, h = k.hidden, o = k.out;
  using row_of = std::pair<std::vector<double>*, std::size_t>;
  for (const auto& [v, count] : std::initializer_list<row_of>{
           {&k.x, n * i}, {&k.w0, h * i}, {&k.b0, h}, {&k.gamma, h}, {&k.beta, h}, {&k.running_mean, h},
           {&k.running_var, h}, {&k.w3, o * h}, {&k.b3, o}, {&k.dy, n * o}, {&k.y, n * o}, {&k.dx, n * i},
           {&k.dw0, h * i}, {&k.db0, h}, {&k.dw3, o * h}, {&k.db3, o}, {&k.running_mean_after, h},
           {&k.running_var_after, h}})
    *v = read_row(in, count);
  in >> k.batches_tracked;
  return k;
}

const parity_data& data() {
  static const parity_data all = [] {
    parity_data d;
    std::vector<group_norm_case>& r = d.group_norm;
    std::ifstream in(FNN_LAYER_PARITY_DATA);
    if (!in) throw std::runtime_error("cannot open " FNN_LAYER_PARITY_DATA);
    std::string tag;
    while (in >> tag) {
      if (tag == "frozen_batch_norm") {
        d.frozen_batch_norm.push_back(read_frozen_batch_norm(in));
        continue;
      }
      if (tag != "group_norm") throw std::runtime_error("layer parity data: unknown record " + tag);
      group_norm_case k;
      in >> k.name >> k.n >> k.c >> k.groups;
      const std::size_t nc = k.n * k.c;
      k.x = read_row(in, nc), k.gamma = read_row(in, k.c), k.beta = read_row(in, k.c), k.dy = read_row(in, nc);
      k.y = read_row(in, nc), k.dx = read_row(in, nc), k.dgamma = read_row(in, k.c), k.dbeta = read_row(in, k.c);
      r.push_back(std::move(k));
    }
    return d;
  }();
  return all;
}
const std::vector<group_norm_case>& cases() { return data().group_norm; }

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

// Linear, BatchNorm1d, GELU, Linear with the batch norm frozen: the net in train mode must be torch's.
template <class Policy>
void run_frozen_batch_norm(const frozen_batch_norm_case& k) {
  fnn::network<Policy, double, fnn::input<6>, fnn::dense<5>, fnn::batch_norm, fnn::gelu, fnn::dense<3>> net;
  BOOST_TEST_REQUIRE((k.n == 8 && k.in == 6 && k.hidden == 5 && k.out == 3));
  auto fill = [](std::span<double> to, const std::vector<double>& from) {
    std::copy(from.begin(), from.end(), to.begin());
  };
  fill(net.template layer<0>().weight(), k.w0);
  fill(net.template layer<0>().bias(), k.b0);
  fill(net.template layer<1>().gamma(), k.gamma);
  fill(net.template layer<1>().beta(), k.beta);
  fill(net.template layer<3>().weight(), k.w3);
  fill(net.template layer<3>().bias(), k.b3);
  net.for_each_buffer([&](fnn::buffer_ref<double>& b) {
    if (b.counter) *b.counter = 7;
    else fill(b.value, b.suffix == "running_mean" ? k.running_mean : k.running_var);
  });
  net.freeze(1);
  fnn::matrix<double> x(8, 6), dy(8, 3);
  std::copy(k.x.begin(), k.x.end(), x.flat().begin());
  std::copy(k.dy.begin(), k.dy.end(), dy.flat().begin());
  net.zero_grad();
  expect_close(k.name + " y", flat(net.forward(x.view(), fnn::mode::train)), k.y);
  net.backward(dy.view(), true);
  expect_close(k.name + " dx", flat(net.input_gradient()), k.dx);
  expect_close(k.name + " dW0", std::span<const double>(net.template layer<0>().weight_grad()), k.dw0);
  expect_close(k.name + " db0", std::span<const double>(net.template layer<0>().bias_grad()), k.db0);
  expect_close(k.name + " dW3", std::span<const double>(net.template layer<3>().weight_grad()), k.dw3);
  expect_close(k.name + " db3", std::span<const double>(net.template layer<3>().bias_grad()), k.db3);
  for (double g : net.template layer<1>().gamma_grad()) BOOST_TEST(g == 0.0);  // torch: grad None
  for (double g : net.template layer<1>().beta_grad()) BOOST_TEST(g == 0.0);
  expect_close(k.name + " running_mean", net.template layer<1>().running_mean(), k.running_mean_after);
  expect_close(k.name + " running_var", net.template layer<1>().running_var(), k.running_var_after);
  BOOST_TEST(net.template layer<1>().batches_tracked() == k.batches_tracked);
}

}  // namespace

BOOST_AUTO_TEST_CASE(frozen_batch_norm_matches_torch_eval_batch_norm_in_a_training_model) {
  BOOST_TEST_REQUIRE(data().frozen_batch_norm.size() == 1u);
  const auto& k = data().frozen_batch_norm[0];
  BOOST_TEST(k.running_mean_after == k.running_mean, boost::test_tools::per_element());  // torch kept them too
  run_frozen_batch_norm<fnn::fused>(k);
  run_frozen_batch_norm<fnn::unfused>(k);
}

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
