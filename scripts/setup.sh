#!/usr/bin/env bash
# Installs every Debian package fnn needs to build, test, benchmark and run its main job.
# Idempotent: packages already present are skipped, apt-get update runs only when something is missing.
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache git pkg-config
  libboost-dev libboost-test-dev libxsimd-dev zlib1g-dev
  libbenchmark-dev libopenblas-dev libdnnl-dev libcli11-dev
  python3-torch python3-numpy python3-matplotlib
  dataset-fashion-mnist
  g++-aarch64-linux-gnu qemu-user   # tests/cross: the SIMD kernels built for aarch64 (NEON), run under qemu
  clang-14 libclang-rt-14-dev       # tests/fuzz: libFuzzer harnesses (-fsanitize=fuzzer,address,undefined)
  gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm  # tests/deploy: Cortex-M
  openmpi-bin libopenmpi-dev        # tests/distributed: data-parallel training over MPI (optional at build time)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "fnn setup: installing ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "fnn setup: all packages present"
fi
