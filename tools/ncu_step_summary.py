#!/usr/bin/env python3
"""Where one training step's GPU time goes, kernel by kernel.

Reads the CSV that Nsight Compute writes for one profiled step,
  ncu --nvtx --nvtx-include "latte step 3/" --metrics gpu__time_duration.sum --csv \\
      latte train ... > step.csv
(the trainer names each step's work "latte step N"), and prints the step's kernel time by
group (GEMMs, attention, memory-bound families) and its costliest kernels with their launch
count, mean time and grid. ncu serializes kernels and runs them at base clocks with cold caches:
read the shares, not the absolute sum, against a step's wall time.
  tools/ncu_step_summary.py step.csv [--top N]
"""
import argparse
import collections
import csv
import re
import sys

# (group, pattern over the demangled kernel name), first match wins.
GROUPS = [
    ("GEMMs (cuBLAS)", r"nvjet|gemm|cutlass|splitKreduce|xmma"),
    ("attention", r"flash|mma_forward|mma_backward|attention"),
    ("RMSNorm", r"rms_norm"),
    ("RoPE", r"rope"),
    ("optimizer and gradient norm", r"adamw|sum_squares|sum_partials|grad_scale"),
    # Before the MoE patterns: the embedding backward's radix sort also counts and scans.
    ("embedding and loss", r"embedding|accumulate_rows|cross_entropy|mean_loss|digits|"
                           r"row_starts|sanitize"),
    ("MoE routing and permutation", r"router|select_experts|dispatch|place|scan|count|gather|"
                                    r"combine|balance|per_token|sum_tokens|expert"),
    ("copies, casts and fills", r"copy|fill|Convert"),
    ("elementwise and activations", r"binary|elementwise|map_kernel|scale|add_inplace|sum_to|"
                                    r"sum_chunks"),
]


def short_name(name, width=80):
    name = re.sub(r"\(.*", "", name)  # drop the parameter list
    name = re.sub(r"(latte|detail|kernels|cuda)::|<unnamed>::|\(anonymous namespace\)::", "",
                  name)
    return name.replace("void ", "")[:width]


def csv_lines(path):
    """The CSV lines of an ncu output file (ncu prints its own notes too)."""
    with open(path, newline="") as f:
        return [line for line in f if line.startswith('"')]


def read_kernels(path):
    rows = list(csv.DictReader(csv_lines(path)))
    if not rows or "Kernel Name" not in rows[0]:
        sys.exit(f"{path}: no ncu CSV kernel rows (was the step range profiled?)")
    kernels = []
    for r in rows:
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        scale = {"ns": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
        us = float(r["Metric Value"].replace(",", "")) * scale.get(r["Metric Unit"], 1e-3)
        kernels.append((r["Kernel Name"], r.get("Grid Size", ""), us))
    return kernels


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    kernels = read_kernels(args.csv)
    total = sum(us for _, _, us in kernels)
    if total == 0:
        sys.exit(f"{args.csv}: the profiled step has no kernels")
    groups = collections.Counter()
    per_kernel = collections.defaultdict(lambda: [0.0, 0, ""])
    for name, grid, us in kernels:
        group = next((g for g, pattern in GROUPS if re.search(pattern, name)), "other")
        groups[group] += us
        entry = per_kernel[short_name(name)]
        entry[0] += us
        entry[1] += 1
        entry[2] = grid
    print(f"{len(kernels)} kernels, {total / 1e3:.2f} ms of kernel time in the step")
    print(f"\n{'group':<32} {'ms':>8} {'share':>7}")
    for group, us in groups.most_common():
        print(f"{group:<32} {us / 1e3:8.2f} {100 * us / total:6.1f}%")
    print(f"\n{'kernel':<80} {'ms':>7} {'calls':>6} {'mean us':>8}  last grid")
    ranked = sorted(per_kernel.items(), key=lambda kv: -kv[1][0])
    for name, (us, calls, grid) in ranked[:args.top]:
        print(f"{name:<80} {us / 1e3:7.2f} {calls:6d} {us / calls:8.1f}  {grid}")


if __name__ == "__main__":
    main()
