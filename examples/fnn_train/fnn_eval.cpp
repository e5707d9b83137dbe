// fnn-eval: test accuracy of a checkpoint. It runs any network whose layer list the checkpoint's metadata
// gives ("fnn.layers", written by fnn-train and by anyone who saves fnn::layers_text<net_t>() with the model):
// fnn-train's own network through its fused typed code, any other through a reference interpreter. A file
// without "fnn.layers" (a PyTorch state_dict of fnn-train's nn.Sequential) is run as fnn-train's network if
// its tensors are exactly that network's. Writes nothing. Exit codes: 0 done, 1 error, CLI11's non-zero codes
// for a bad command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <optional>

#include "runtime_net.hpp"
#include "trainer.hpp"

namespace {

// The first lines of a long mismatch report: the differences, not the two full tensor lists.
std::string first_lines(const std::string& s, int n) {
  std::size_t at = 0;
  for (int i = 0; i < n && at != std::string::npos; ++i) at = s.find('\n', at + 1);
  return at == std::string::npos ? s : s.substr(0, at) + "\n    ...";
}

}  // namespace

int main(int argc, char** argv) {
  std::string checkpoint, data = "/usr/share/datasets/fashion-mnist";
  bool per_class = false;
  CLI::App app{"fnn-eval: test accuracy of a checkpoint whose metadata lists its layers (fnn-train writes it), or "
               "of a state_dict of fnn-train's network (" + std::string(fnn_train::architecture) + ")."};
  app.add_option("--checkpoint", checkpoint, "model.safetensors written by fnn-train (or fnn::io::save_model)")
      ->required();
  app.add_option("--data", data, "directory with the MNIST-format IDX files (raw or .gz)")->capture_default_str();
  app.add_flag("--per-class", per_class, "also print per-class accuracy and the confusion matrix");
  CLI11_PARSE(app, argc, argv);
  try {
    const auto file = fnn::io::read_safetensors(checkpoint);
    const auto stdz = fnn_train::standardization_of(file);
    const auto layers = file.metadata.find("fnn.layers");
    const std::string typed_layers = fnn::layers_text<fnn_train::net_t>();
    std::optional<fnn_train::net_t> net;
    std::optional<fnn_train::runtime_net> other;
    if (layers == file.metadata.end() || layers->second == typed_layers) {
      net.emplace();
      try {
        fnn::io::load_model(file, *net);
      } catch (const fnn::shape_error& e) {
        if (layers != file.metadata.end()) throw;
        throw fnn::shape_error(first_lines(fnn_train::message_of(e), 4) +
                               "\n  (no \"fnn.layers\" in its metadata, so fnn-eval can only run it as fnn-train's " +
                               fnn_train::architecture + ")");
      }
    } else {
      other.emplace(file, layers->second);
      if (other->in_features() != 784 || other->out_features() != fnn_train::classes)
        throw fnn::shape_error(checkpoint + ": the network maps " + std::to_string(other->in_features()) + " -> " +
                               std::to_string(other->out_features()) + " features; MNIST-format data needs 784 -> " +
                               std::to_string(fnn_train::classes));
    }
    auto test = fnn_train::load_split(data, fnn::io::split::test, 0);
    fnn::matrix<float> logits;
    const auto e = fnn_train::evaluate_with(
        [&](fnn::const_matrix_view<float> x) -> fnn::const_matrix_view<float> {
          if (net) return net->infer_view(x);
          const auto y = other->infer(x.data(), std::size_t(x.rows()));
          logits = fnn::matrix<float>(x.rows(), fnn::index_t(fnn_train::classes), y);
          return logits.view();
        },
        test, stdz ? &*stdz : nullptr);
    std::printf("test accuracy %.4f  test loss %.4f  (%ld samples, %s%s)\n", e.accuracy, e.loss, long(test.size()),
                checkpoint.c_str(), net ? "" : ", run by the reference interpreter");
    if (per_class) std::printf("%s", fnn_train::confusion_report(e).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn-eval: %s\n", fnn_train::message_of(e).c_str());
    return 1;
  }
}
