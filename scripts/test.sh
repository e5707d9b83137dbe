#!/usr/bin/env bash
# The whole test suite from a fresh clone: install packages, configure (dev preset: -O2, -Werror), build, ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset dev
cmake --build --preset dev -j "$(nproc)"
ctest --preset dev -j "$(nproc)" "$@"
