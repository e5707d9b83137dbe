// fnn-eval: test accuracy of a checkpoint. It runs any network whose layer list the checkpoint's metadata
// gives ("fnn.layers", written by fnn-train and by anyone who saves fnn::layers_text<net_t>() with the model):
// fnn-train's own network through its fused typed code, any other through a reference interpreter. A file
// without "fnn.layers" (a PyTorch state_dict of fnn-train's nn.Sequential) is run as fnn-train's network if
// its tensors are exactly that network's. Writes nothing. Exit codes: 0 done, 1 error, CLI11's non-zero codes
// for a bad command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime_net.hpp"
#include "trainer.hpp"

namespace {

// The first lines of a long mismatch report: the differences, not the two full tensor lists.
std::string first_lines(const std::string& s, int n) {
  std::size_t at = 0;
  for (int i = 0; i < n && at != std::string::npos; ++i) at = s.find('\n', at + 1);
  return at == std::string::npos ? s : s.substr(0, at) + "\n    ...";
}


// One model of fnn-eval: fnn-train's network through its typed code, any other through the interpreter, with
// the standardization its checkpoint records.
struct member {
  std::string path;
  std::optional<fnn_train::net_t> net;
  std::optional<fnn_train::runtime_net> other;
  std::optional<fnn_train::standardizer> stdz;
  fnn::matrix<float> x, logits;

  explicit member(const std::string& checkpoint) : path(checkpoint) {
    const auto file = fnn::io::read_safetensors(checkpoint);
    stdz = fnn_train::standardization_of(file);
    const auto layers = file.metadata.find("fnn.layers");
    const std::string typed_layers = fnn::layers_text<fnn_train::net_t>();
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
  }
  // Logits of raw images (pixel / 255), standardized first if the model was trained so.
  fnn::const_matrix_view<float> operator()(fnn::const_matrix_view<float> raw) {
    x = fnn::matrix<float>(raw.rows(), raw.cols(), std::span<const float>(raw.data(), std::size_t(raw.size())));
    if (stdz) stdz->apply(x.view());
    if (net) return net->infer_view(x.view());
    const auto y = other->infer(x.data(), std::size_t(x.rows()));
    logits = fnn::matrix<float>(x.rows(), fnn::index_t(fnn_train::classes), y);
    return logits.view();
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string checkpoint, data = "/usr/share/datasets/fashion-mnist";
  std::vector<std::string> ensemble;
  bool per_class = false, tta = false;
  CLI::App app{"fnn-eval: test accuracy of a checkpoint whose metadata lists its layers (fnn-train writes it), or "
               "of a state_dict of fnn-train's network (" + std::string(fnn_train::architecture) + ")."};
  auto* single = app.add_option("--checkpoint", checkpoint, "model.safetensors written by fnn-train (or fnn::io::save_model)");
  auto* several = app.add_option("--ensemble", ensemble,
                                 "several checkpoints: their predicted probabilities are averaged (an ensemble)")
                      ->expected(2, 1000);
  single->excludes(several);
  app.add_option("--data", data, "directory with the MNIST-format IDX files (raw or .gz)")->capture_default_str();
  app.add_flag("--per-class", per_class, "also print per-class accuracy and the confusion matrix");
  app.add_flag("--tta", tta, "test-time augmentation: average the probabilities over the image, its horizontal flip "
                             "and its 1-pixel shifts");
  CLI11_PARSE(app, argc, argv);
  if (checkpoint.empty() && ensemble.empty()) {
    std::fprintf(stderr, "fnn-eval: give --checkpoint FILE or --ensemble FILE FILE ...\n");
    return 1;
  }
  try {
    std::vector<std::unique_ptr<member>> members;
    for (const auto& c : checkpoint.empty() ? ensemble : std::vector<std::string>{checkpoint})
      members.push_back(std::make_unique<member>(c));
    auto test = fnn_train::load_split(data, fnn::io::split::test, 0);
    fnn::matrix<float> logp;
    const auto e = fnn_train::evaluate_with(
        [&](fnn::const_matrix_view<float> x) -> fnn::const_matrix_view<float> {
          if (members.size() == 1 && !tta) return (*members[0])(x);  // the logits themselves: the plain score
          fnn::train::mean_probabilities acc;
          for (auto& m : members) {
            if (tta) {
              auto p = fnn::train::tta_probabilities(x, 28, 28, fnn::train::default_tta(),
                                                           [&](fnn::const_matrix_view<float> v) { return (*m)(v); });
              for (fnn::index_t i = 0; i < p.size(); ++i) p.data()[i] = std::log(std::max(p.data()[i], 1e-30f));
              acc.add(p.view());  // softmax(log p) = p
            } else {
              acc.add((*m)(x));
            }
          }
          const auto p = acc.mean();
          logp = fnn::matrix<float>(p.rows(), p.cols());
          for (fnn::index_t i = 0; i < p.size(); ++i) logp.data()[i] = std::log(std::max(p.data()[i], 1e-30f));
          return logp.view();
        },
        test, nullptr);
    std::string what = members.size() == 1 ? members[0]->path : "ensemble of " + std::to_string(members.size());
    if (members.size() == 1 && !members[0]->net) what += ", run by the reference interpreter";
    if (tta) what += ", with TTA";
    std::printf("test accuracy %.4f  test loss %.4f  (%ld samples, %s)\n", e.accuracy, e.loss, long(test.size()),
                what.c_str());
    if (per_class) std::printf("%s", fnn_train::confusion_report(e).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn-eval: %s\n", fnn_train::message_of(e).c_str());
    return 1;
  }
}
