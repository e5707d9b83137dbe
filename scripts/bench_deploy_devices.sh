#!/usr/bin/env bash
# Size and instruction counts of the deploy device images (tests/unit/deploy/devices, built by the dev preset):
# text/data/bss, the weights (device_model::model) and embedded test data (device_data::*) against the code,
# instructions per inference (SysTick under qemu -icount shift=0, mps2 only) and peak stack (painted stack).
# Writes bench/results/deploy_devices.md.   usage: scripts/bench_deploy_devices.sh [build dir, default build/dev]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/dev}
dev=$build/tests/unit/deploy/devices
out=$root/bench/results/deploy_devices.md
cmake --build "$build" --target fnn_deploy_cortex_m4f fnn_deploy_cortex_m4f_small fnn_deploy_cortex_m0plus \
  fnn_deploy_cortex_m4f_probe fnn_deploy_int8_cortex_m4f fnn_deploy_int8_cortex_m4f_small fnn_deploy_int8_cortex_m0plus \
  fnn_deploy_int8_cortex_m4f_probe > /dev/null
{
  echo "# Deploy on Cortex-M (qemu-system-arm $(qemu-system-arm --version | head -1 | awk '{print $4}'))"
  echo
  echo "$(arm-none-eabi-gcc --version | head -1), -O2 -ffp-contract=off -fno-exceptions -fno-rtti, newlib-nano libm;"
  echo "fnn commit $(git -C "$root" rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), command: scripts/bench_deploy_devices.sh."
  echo "\"code\" = text + data minus the weights and the 16 embedded test images. The test images include the"
  echo "check, calibration and printing (~1.7 KB more); cortex_m4f_probe is the smallest firmware around the model (start-up"
  echo "and one predict): what deploy costs beyond the weights. Instructions: SysTick under -icount shift=0, calibrated"
  echo "by a loop of known length; peak stack: painted stack, the check's frames included. int8_* images: the int8"
  echo "export of the same checkpoint (fnn-export --int8), input quantized on the device, every output byte equal to x86;"
  echo "on the M4F the dense kernel uses SMLAD (the M0+ runs the plain C++ reference kernel). The int8 test images also"
  echo "hold the kernel check (four dense layers in both kernels, ~10 KB of code, 1 KB of bss): read int8 code on the probe."
  echo
  echo "| image | model | text | data | bss | weights | code | instructions / inference | peak stack |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for e in cortex_m4f_probe:784-256-256-10 cortex_m4f:784-256-256-10 cortex_m4f_small:784-32-10 cortex_m0plus:784-32-10 \
    int8_cortex_m4f_probe:784-256-256-10 int8_cortex_m4f:784-256-256-10 int8_cortex_m4f_small:784-32-10 \
    int8_cortex_m0plus:784-32-10; do
    name=${e%%:*}; model=${e#*:}; elf=$dev/$name.elf
    read -r text data bss <<< "$(arm-none-eabi-size -A -d "$elf" | awk '$1==".text"{t=$2} $1==".data"{d=$2} $1==".bss"{b=$2} END{print t, d, b}')"
    weights=$(arm-none-eabi-nm -S -C -t d "$elf" | awk '/ device_model::model$/ { s += $2 } END { print s + 0 }')
    tdata=$(arm-none-eabi-nm -S -C -t d "$elf" | awk '/ device_data::/ { s += $2 } END { print s + 0 }')
    case $name in *cortex_m0plus) board="M0+, microbit";; *) board="M4F, mps2-an386";; esac
    run=$(cd "$build" && ctest -R "deploy_${name}_qemu\$" -V 2>&1 | grep -E 'deploy( int8)? (pass|FAIL)' || true)
    instr=$(printf '%s\n' "$run" | sed -n 's/.*instructions per inference \([0-9]*\).*/\1/p')
    stack=$(printf '%s\n' "$run" | sed -n 's/.*peak stack \([0-9]*\) bytes.*/\1/p')
    echo "| $name ($board) | $model | $text | $data | $bss | $weights | $((text + data - weights - tdata)) | ${instr:-n/a} | ${stack:-n/a} |"
  done
} > "$out"
cat "$out"
