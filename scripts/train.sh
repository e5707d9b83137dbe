#!/usr/bin/env bash
# Quick start: installs what is missing, builds fnn-train (release preset: -O3 -march=native) and trains the
# Fashion-MNIST MLP with the default settings. Extra arguments go to fnn-train, e.g.
#   bash scripts/train.sh --epochs 3 --threads 1
#   bash scripts/train.sh --help
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target fnn-train
exec ./build/release/examples/fnn_train/fnn-train "$@"
