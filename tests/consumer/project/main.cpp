#include <cmath>
#include <cstdio>
#include <vector>

#include <fnn/fnn.hpp>

struct sgd {
  float lr = 0.1f;
  template <class Net>
  void step(Net& net) {
    net.for_each_parameter([&](auto& p) {
      for (std::size_t i = 0; i < p.value.size(); ++i) p.value[i] -= lr * p.grad[i];
    });
  }
};

int main() {
  fnn::sequential<fnn::input<4>, fnn::dense<8>, fnn::relu, fnn::dense<2>> net{fnn::seed{1}};
  fnn::matrix<float> x(4, 4);
  for (fnn::index_t i = 0; i < x.size(); ++i) x.data()[i] = float(i % 5) - 2.0f;
  const std::vector<std::int32_t> y{0, 1, 0, 1};
  sgd opt;
  const float first = net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  float last = first;
  for (int i = 0; i < 50; ++i) last = net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{}, opt);
  std::printf("consumer: loss %f -> %f\n", double(first), double(last));
  return std::isfinite(last) && last < first ? 0 : 1;
}
