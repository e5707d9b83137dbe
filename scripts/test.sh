#!/usr/bin/env bash
# The whole test suite from a fresh clone: install packages; the dev preset (-O2, -Werror, native) with every
# CTest test (static checks, compile-fail, unit suites, parity, consumer, cross targets, fuzzers); then the unit
# suites once more under AddressSanitizer + UndefinedBehaviorSanitizer (asan-ubsan preset).
# Arguments go to the dev ctest (e.g. -R train). FNN_TEST_SANITIZERS=0 skips the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset dev
cmake --build --preset dev -j "$(nproc)"
ctest --preset dev -j "$(nproc)" "$@"

if [ "${FNN_TEST_SANITIZERS:-1}" != 0 ]; then
  # Not fnn_distributed_tests (they run under mpirun; an ASan build against Open MPI has not been tried).
  suites=(fnn_io_tests fnn_kernel_tests fnn_optim_tests fnn_network_tests fnn_train_tests fnn_parity_tests
          fnn_deploy_tests fnn_deploy_export_roundtrip fnn_data_tests)
  cmake --preset asan-ubsan
  cmake --build --preset asan-ubsan -j "$(nproc)" --target "${suites[@]}"
  regex="^($(IFS='|'; echo "${suites[*]}"))\$"
  ctest --preset asan-ubsan -j "$(nproc)" -R "$regex"
fi
