// Writes the checkpoints of the export round trip (random weights and running statistics, "fnn.layers" in the
// metadata as fnn-train writes it): <dir>/main.safetensors and <dir>/mixed.safetensors.
#include <cstdio>
#include <exception>
#include <filesystem>

#include "export_nets.hpp"
#include "fnn/io/checkpoint.hpp"
#include "fnn/network/describe.hpp"
#include "helpers.hpp"

template <class Net>
void save(const std::filesystem::path& path, std::uint32_t seed) {
  Net net{fnn::seed{seed}};
  fnn_deploy_test::randomize(net, seed + 1);
  fnn::io::save_model(path, net, {{"format", "pt"}, {"fnn.layers", fnn::layers_text<Net>()}});
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output dir>\n", argv[0]);
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    save<fnn_deploy_test::main_net>(dir / "main.safetensors", 42);
    save<fnn_deploy_test::mixed_net>(dir / "mixed.safetensors", 43);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_fixture: %s\n", e.what());
    return 1;
  }
}
