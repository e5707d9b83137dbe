#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz longer than CTest does (fuzz_* tests, FNN_FUZZ_SECONDS each).
#   scripts/fuzz.sh [seconds-per-harness (default 600)] [harness ... (default: json safetensors idx)]
# Uses the dev build (build/dev, or $FNN_BUILD_DIR), configuring and building the fuzzers first. The corpus each
# run grows is kept in <build>/tests/fuzz/<harness>/corpus, so repeated runs go deeper; a finding is saved next
# to it (crash-*, leak-*, timeout-*, oom-*) and makes the script exit non-zero after the remaining harnesses ran.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(json safetensors idx)
case "$seconds" in '' | *[!0-9]*) echo "fuzz.sh: seconds must be a whole number, got '$seconds'" >&2; exit 2 ;; esac

build="${FNN_BUILD_DIR:-build/dev}"
[ -f "$build/CMakeCache.txt" ] || cmake --preset dev
cmake --build "$build" --target fnn_fuzzers
fuzz="$(cd "$build/tests/fuzz" && pwd)"
[ -x "$fuzz/fuzz_json" ] || { echo "fuzz.sh: no fuzzers in $fuzz (clang++-14 missing? see the CMake output)" >&2; exit 1; }

failed=()
for h in "${harnesses[@]}"; do
  [ -x "$fuzz/fuzz_$h" ] || { echo "fuzz.sh: no harness '$h' (known: json safetensors idx)" >&2; exit 2; }
  dict=()
  [ "$h" = idx ] || dict=(-DDICT="$PWD/tests/fuzz/header.dict")
  echo "== fuzz_$h for $seconds s"
  if ! cmake -DFUZZER="$fuzz/fuzz_$h" -DSEEDS="$fuzz/seeds/$h" -DWORK="$fuzz/$h" "${dict[@]}" \
      -DSECONDS="$seconds" -P tests/fuzz/run_fuzzer.cmake; then
    failed+=("$h")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: no findings (${harnesses[*]}, $seconds s each)"
