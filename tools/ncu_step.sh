#!/usr/bin/env bash
# Kernel by kernel, where one training step of the gpu-scale models goes: Nsight Compute (ncu,
# from the CUDA toolkit) profiles the kernels of step 3 only (the trainer names each step's work
# "latte step N" as an NVTX range) of baseline_mha and deepseek_v3_small, one metric
# (gpu__time_duration), and tools/ncu_step_summary.py prints each step's kernel time by group and
# its costliest kernels. Skipped (exit 0) when ncu is not installed. The CSVs go to OUT_DIR.
#   tools/ncu_step.sh LATTE_BINARY OUT_DIR
set -uo pipefail
latte="$1"
out="$2"
cd "$(dirname "$0")/.."
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
if [[ -z "$ncu" ]]; then
  echo "ncu not found: no per-kernel step profile"
  exit 0
fi
mkdir -p "$out"
status=0
for model in baseline_mha deepseek_v3_small; do
  echo "-- $model, gpu scale, step 3 of 3"
  timeout 120 "$ncu" --nvtx --nvtx-include "latte step 3/" --metrics gpu__time_duration.sum --csv \
    "$latte" suite configs/exp3/suite.toml --scale gpu --only "$model" --no-plots --no-progress \
    --out "$(mktemp -d)" --set train.steps=3 train.warmup_steps=1 train.checkpoint_every=0 \
    eval.every=0 eval.windows=1 "eval.length_multipliers=[1]" >"$out/ncu_$model.csv" 2>"$out/ncu_$model.err" ||
    { status=1; tail -n 5 "$out/ncu_$model.err"; }
  python3 tools/ncu_step_summary.py "$out/ncu_$model.csv" --top 20 || status=1
done
exit $status
