// fnn-export: a checkpoint -> one C++ header with the deploy model (fnn/deploy/model.hpp) and its weights
// compiled in. Exit codes: 0 written, 1 error (named: file, tensor, expected and found shapes), CLI11's codes
// for a bad command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "int8_exporter.hpp"
#include "fnn/io/file.hpp"

int main(int argc, char** argv) {
  std::string checkpoint, output;
  fnn_export::options o;
  CLI::App app{
      "fnn-export: write a checkpoint's network as a header for fnn::deploy (weights as constexpr "
      "hex-float arrays, batch norm folded, dropout removed)."};
  app.add_option("checkpoint", checkpoint, "model.safetensors (fnn-train's, or a PyTorch nn.Sequential state_dict)")
      ->required();
  app.add_option("-o,--output", output, "header to write")->required();
  app.add_option("--layers", o.layers,
                 "layer list if the checkpoint has no \"fnn.layers\", e.g. \"dense 784 32; relu 32 32; dense 32 10\"");
  app.add_option("--namespace", o.name_space, "namespace of model_type and model")->capture_default_str();
  app.add_option("--batch", o.batch, "static batch of the model")->capture_default_str();
  app.add_flag("--int8", o.int8,
               "post-training int8 quantization (fnn::deploy::int8): per-channel int8 weights, int8 activations, "
               "int32 biases, activations as 256-entry tables; needs --calibration-data");
  app.add_option("--calibration-data", o.calibration_data,
                 "--int8: MNIST-format directory whose training images calibrate the activation ranges");
  app.add_option("--calibration-images", o.calibration_images, "--int8: how many training images calibrate")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "--int8: seed of the draw of the calibration images")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const auto file = fnn::io::read_safetensors(checkpoint);
    if (!o.int8 && (!o.calibration_data.empty()))
      throw fnn::value_error("--calibration-data is an --int8 option; add --int8");
    const std::string header = o.int8 ? fnn_export::export_int8_header(file, o) : fnn_export::export_header(file, o);
    std::FILE* f = std::fopen(output.c_str(), "wb");
    if (f == nullptr) throw fnn::io_error(output + ": cannot open for writing");
    const bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
    if (std::fclose(f) != 0 || !ok) throw fnn::io_error(output + ": write failed");
    std::printf("fnn-export: %s -> %s (%zu bytes)\n", checkpoint.c_str(), output.c_str(), header.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fnn-export: %s\n", e.what());
    return 1;
  }
}
