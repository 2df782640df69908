#!/usr/bin/env bash
# All tests: set up, build Release, run the whole suite under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ctest --preset release -j "$(nproc 2>/dev/null || echo 2)"
