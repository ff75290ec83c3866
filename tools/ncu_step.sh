#!/usr/bin/env bash
# Kernel by kernel, where one training step of the gpu-scale models goes and what bounds its
# attention kernels: Nsight Compute (ncu, from the CUDA toolkit) profiles step 3 only (the trainer
# names each step's work "latte step N" as an NVTX range) of baseline_mha and deepseek_v3_small,
# twice per model:
# - every kernel, one metric (gpu__time_duration): tools/ncu_step_summary.py prints the step's
#   kernel time by group and its costliest kernels;
# - the flash attention kernels of the step's first layers (14 launches: the forward's and the
#   last layers' backward), with the sections that say what bounds a kernel (speed of light,
#   occupancy, launch, compute workload, warp states): tools/ncu_kernel_metrics.py prints time,
#   occupancy, issue-slot and tensor-pipe use, busiest pipes and largest stalls per kernel.
# - (baseline_mha) the step's first flash forward launch, instruction by instruction: the SASS
#   with its warp stall samples (SourceCounters, ncu's source page), kept as
#   ncu_forward_sass.csv for reading which instructions the kernel waits on; informational, its
#   failure does not fail the script.
# Skipped (exit 0) when ncu is not installed. The CSVs go to OUT_DIR.
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
# ncu_model MODEL NAME NCU_ARGS...: profiles step 3 of MODEL at gpu scale into $out/NAME.csv.
ncu_model() {
  local model="$1" name="$2"
  shift 2
  timeout 150 "$ncu" --nvtx --nvtx-include "latte step 3/" "$@" --csv \
    "$latte" suite configs/exp3/suite.toml --scale gpu --only "$model" --no-plots --no-progress \
    --out "$(mktemp -d)" --set train.steps=3 train.warmup_steps=1 train.checkpoint_every=0 \
    eval.every=0 eval.windows=1 "eval.length_multipliers=[1]" >"$out/$name.csv" 2>"$out/$name.err" ||
    { status=1; tail -n 5 "$out/$name.err"; }
}
for model in baseline_mha deepseek_v3_small; do
  echo "-- $model, gpu scale, step 3 of 3"
  ncu_model "$model" "ncu_$model" --metrics gpu__time_duration.sum
  python3 tools/ncu_step_summary.py "$out/ncu_$model.csv" --top 20 || status=1
  echo "-- $model: its flash attention kernels"
  ncu_model "$model" "ncu_attention_$model" -k regex:mma_ --launch-count 14 --page raw \
    --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section ComputeWorkloadAnalysis --section WarpStateStats
  python3 tools/ncu_kernel_metrics.py "$out/ncu_attention_$model.csv" || status=1
done
echo "-- baseline_mha: the first flash forward's SASS with stall samples -> ncu_forward_sass.csv"
saved_status=$status
ncu_model baseline_mha ncu_forward_sass -k regex:mma_forward --launch-count 1 \
  --section SourceCounters --page source --print-source sass
echo "$(wc -l <"$out/ncu_forward_sass.csv") lines"
status=$saved_status
exit $status
