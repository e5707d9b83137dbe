// fnn-eval: loads a checkpoint written by fnn-train (or a PyTorch state_dict of the same nn.Sequential saved
// as safetensors) and reports its test accuracy. Writes nothing. Exit codes: 0 done, 1 error,
// CLI11's non-zero codes for a bad command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <optional>

#include "trainer.hpp"

int main(int argc, char** argv) {
  std::string checkpoint, data = "/usr/share/datasets/fashion-mnist";
  bool per_class = false;
  CLI::App app{"fnn-eval: test accuracy of a fnn-train checkpoint (" + std::string(fnn_train::architecture) + ")."};
  app.add_option("--checkpoint", checkpoint, "model.safetensors written by fnn-train")->required();
  app.add_option("--data", data, "directory with the MNIST-format IDX files (raw or .gz)")->capture_default_str();
  app.add_flag("--per-class", per_class, "also print per-class accuracy and the confusion matrix");
  CLI11_PARSE(app, argc, argv);
  try {
    fnn_train::net_t net;
    const auto file = fnn::io::read_safetensors(checkpoint);
    fnn::io::load_model(file, net);
    auto test = fnn_train::load_split(data, fnn::io::split::test, 0);
    std::optional<fnn_train::standardizer> stdz;
    const auto it = file.metadata.find("standardize");
    if (it != file.metadata.end() && !it->second.empty())
      stdz = fnn_train::standardizer::load(fnn_train::standardize_path_of(checkpoint, it->second));
    const auto e = fnn_train::evaluate(net, test, stdz ? &*stdz : nullptr);
    std::printf("test accuracy %.4f  test loss %.4f  (%ld samples, %s)\n", e.accuracy, e.loss, long(test.size()),
                checkpoint.c_str());
    if (per_class) std::printf("%s", fnn_train::confusion_report(e).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn-eval: %s\n", fnn_train::message_of(e).c_str());
    return 1;
  }
}
