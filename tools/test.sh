#!/usr/bin/env bash
# Builds latte and runs every test (unit, integration; cuda tests skip without a GPU).
#   tools/test.sh [PRESET] [extra ctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
tools/build.sh "$preset"
jobs=$(nproc 2>/dev/null || echo 2)
ctest --preset "$preset" -j "$jobs" --timeout 900 "$@"
