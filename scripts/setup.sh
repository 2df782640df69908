#!/usr/bin/env bash
# Installs the Debian packages moe.cpp needs (only the missing ones), then configures and builds
# the Release preset: every target, or only those named (`bash scripts/setup.sh moe_cli` builds
# just the `moe` command). Safe to run again: it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ cmake make pkg-config
  libgtest-dev googletest      # unit tests
  nlohmann-json3-dev           # JSON configs and --json output
  libcli11-dev                 # command-line parsing
  libpcre2-dev libutf8proc-dev # tokenizers: Unicode regexes, normal forms
  python3-numpy python3-torch  # test oracles (run with /usr/bin/python3)
  python3-sentencepiece python3-jinja2 nodejs  # tokenizer and chat-template oracles (+ tests/node from npm)
  chromium                     # renders the SVG plots in the plot tests
  clang libclang-rt-dev libomp-dev  # the fuzz targets (libFuzzer, ASan + UBSan; tests/fuzz/)
  libc6-dev fortunes fortunes-min fortunes-de fortunes-es fortunes-it  # `moe data`: the demo corpus
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The JavaScript oracles (Hugging Face's tokenizers.js and Jinja), pinned by tests/node/package-lock.json.
if [[ ! -f tests/node/node_modules/.package-lock.json || tests/node/package-lock.json -nt tests/node/node_modules/.package-lock.json ]]; then
  echo "[setup] npm ci in tests/node"
  (cd tests/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset release >/dev/null
if (($#)); then
  cmake --build --preset release -j "$jobs" --target "$@"
else
  cmake --build --preset release -j "$jobs"
fi
