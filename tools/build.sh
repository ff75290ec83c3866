#!/usr/bin/env bash
# Configures and builds latte (release preset: CUDA too when nvcc is present) after installing
# what is missing. Prints only the build's warnings/errors and a one-line summary.
#   tools/build.sh [PRESET]      default: release
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
tools/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
log=$(mktemp)
if ! { cmake --preset "$preset" && cmake --build --preset "$preset" -j "$jobs"; } >"$log" 2>&1; then
  grep -E "error|Error|warning" "$log" | head -n 60 >&2 || true
  tail -n 30 "$log" >&2
  echo "tools/build.sh: build failed (preset $preset)" >&2
  exit 1
fi
rm -f "$log"
echo "built build/$preset"
