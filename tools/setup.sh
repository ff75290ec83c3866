#!/usr/bin/env bash
# Installs what latte needs on a fresh Debian 12 / Ubuntu machine. Idempotent and quiet:
# prints nothing when everything is present, and the apt log only when an install fails.
#   tools/setup.sh            build, test and report dependencies
#   tools/setup.sh --torch    also PyTorch (regenerating reference fixtures, tools/bench_vs_torch.py)
set -euo pipefail

packages=(build-essential cmake pkg-config libcli11-dev libtoml11-dev doctest-dev libopenblas-openmp-dev
  nlohmann-json3-dev libopenmpi-dev openmpi-bin fortunes python3 python3-numpy python3-matplotlib)
if [[ "${1:-}" == "--torch" ]]; then packages+=(python3-torch); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
log=$(mktemp)
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
  --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "tools/setup.sh: installing ${missing[*]} failed (log above)" >&2
  exit 1
fi
rm -f "$log"
