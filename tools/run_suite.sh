#!/usr/bin/env bash
# The main job: installs what is missing, builds latte (CPU), and runs the exp3 experiment
# suite on the default corpus at cpu scale; prints where the report is.
#   tools/run_suite.sh [latte suite options]   e.g. --scale smoke, --repeats 3, --only q_lora
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh cpu
exec build/cpu/latte suite configs/exp3/suite.toml "$@"
