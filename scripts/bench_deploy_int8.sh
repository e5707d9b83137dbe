#!/usr/bin/env bash
# int8 vs float accuracy of the main job's model: fnn-train (10 epochs, seed 42) into a temporary directory,
# fnn-export float and --int8 (calibration: 1000 training images, seed 42), both headers compiled into
# tests/unit/deploy/devices/int8_accuracy.cpp, run on the full Fashion-MNIST test set on x86; plus the weight
# bytes of both headers. Writes bench/results/deploy_int8.md.
#   usage: scripts/bench_deploy_int8.sh [build dir with fnn-train and fnn-export, default build/dev]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/dev}
data=${FNN_FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
out=$root/bench/results/deploy_int8.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --build "$build" --target fnn-train fnn-export > /dev/null
train_cmd="fnn-train --epochs 10 --seed 42 --data $data --out \$tmp/run"
"$build/examples/fnn_train/fnn-train" --epochs 10 --seed 42 --data "$data" --out "$tmp/run" > "$tmp/train.log"
"$build/examples/fnn_export/fnn-export" "$tmp/run/model.safetensors" -o "$tmp/float_model.hpp" --namespace float_model > /dev/null
int8_cmd="fnn-export \$tmp/run/model.safetensors -o int8_model.hpp --namespace int8_model --int8 --calibration-data $data --calibration-images 1000 --seed 42"
"$build/examples/fnn_export/fnn-export" "$tmp/run/model.safetensors" -o "$tmp/int8_model.hpp" --namespace int8_model \
  --int8 --calibration-data "$data" --calibration-images 1000 --seed 42 > /dev/null
c++ -std=c++20 -O2 -ffp-contract=off -I"$root/include" -I"$root/examples/fnn_export" -I"$tmp" \
  "$root/tests/unit/deploy/devices/int8_accuracy.cpp" -o "$tmp/int8_accuracy" -lz
result=$("$tmp/int8_accuracy" "$tmp/run/model.safetensors" "$data" 0 0.5) || { echo "$result"; exit 1; }
# Weight bytes: the float header's comment, and the int8 model's weight_bytes (weights, biases, multipliers, tables).
float_bytes=$(sed -n 's/.*parameters (\([0-9]*\) bytes of weights).*/\1/p' "$tmp/float_model.hpp" | head -1)
cat > "$tmp/bytes.cpp" <<'EOF'
#include <cstdio>
#include "int8_model.hpp"
int main() {
  std::printf("%zu %zu %zu\n", int8_model::model_type::weight_bytes, sizeof(int8_model::model),
              int8_model::model_type::stack_bytes);
}
EOF
c++ -std=c++20 -O1 -march=native -I"$root/include" -I"$tmp" "$tmp/bytes.cpp" -o "$tmp/bytes"
read -r int8_bytes int8_sizeof int8_stack <<< "$("$tmp/bytes")"
# Batch-1 latency on this host (-O3 -march=native as bench_deploy.sh: the AVX2 int8 kernel where the CPU has it), float and int8
# alternating, medians of 7 rounds of 2000 calls; the machine may be shared, so read it as a ratio of one run.
c++ -std=c++20 -O3 -march=native -ffp-contract=off -I"$root/include" -I"$tmp" \
  "$root/tests/unit/deploy/devices/int8_latency.cpp" -o "$tmp/latency"
read -r float_us int8_us <<< "$("$tmp/latency")"
last_epoch=$(grep -E '^test accuracy' "$tmp/train.log" | tail -1 || true)
{
  echo "# Deploy int8: test accuracy of the main job's model, int8 vs float (x86)"
  echo
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; $(c++ --version | head -1), -O2 (accuracy), -O3 -march=native (latency)"
  echo "fnn commit: $(git -C "$root" rev-parse --short HEAD); date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: scripts/bench_deploy_int8.sh"
  echo
  echo "Model: \`$train_cmd\` (784-256-256-10, dense + batch_norm + GELU blocks)."
  echo "float: \`fnn-export\` (batch norm folded, fnn::deploy::model); int8: \`$int8_cmd\`"
  echo "(per-channel symmetric int8 weights, per-tensor asymmetric int8 activations, int32 biases, GELU as 256-entry tables)."
  echo "Both on all 10000 Fashion-MNIST test images; the int8 input is quantized by the model's quantize_input, the int8"
  echo "class is the argmax of the int8 outputs. fnn-train's own evaluation (its network, not deploy): \`${last_epoch:-n/a}\`"
  echo
  printf '%s\n' "$result" | sed -n '/^| class/,/^| all/p'
  echo
  printf '%s\n' "$result" | tail -1
  echo
  echo "| | float | int8 | ratio |"
  echo "|---|---:|---:|---:|"
  awk -v f="$float_bytes" -v q="$int8_bytes" 'BEGIN { printf "| weight bytes (flash) | %d | %d | %.2fx smaller |\n", f, q, f / q }'
  awk -v f="$float_us" -v q="$int8_us" 'BEGIN { printf "| batch-1 predict on this host, µs (median, -O3 -march=native) | %.1f | %.1f | %.2fx |\n", f, q, f / q }'
  echo
  echo "int8 weight bytes = model_type::weight_bytes (int8 weights, int32 biases and multipliers, shifts, zero points,"
  echo "two 256-byte tables); sizeof(model) = $int8_sizeof; stack of predict beyond its frames = $int8_stack bytes."
} > "$out"
cat "$out"
