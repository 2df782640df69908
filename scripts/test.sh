#!/usr/bin/env bash
# All tests: set up, build Release, run the whole suite under ctest; then build the fuzz targets
# (Clang, libFuzzer, ASan + UBSan) and fuzz each for a few seconds from its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
ctest --preset release -j "$jobs"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs" --target fuzz_all
ctest --preset fuzz -j "$jobs"
