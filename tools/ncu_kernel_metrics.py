#!/usr/bin/env python3
"""What bounds each profiled kernel: Nsight Compute's raw metrics, kernel by kernel.

Reads the CSV of `ncu --page raw --csv` (one row per profiled launch, one column per metric, a
row of units after the header) with the sections SpeedOfLight, Occupancy, LaunchStats,
ComputeWorkloadAnalysis and WarpStateStats, and prints per kernel (launches averaged): time,
registers, the occupancy limits and the achieved occupancy, issue-slot and tensor-pipe use, the
busiest pipes and the largest warp stall reasons. Metrics a given ncu version names otherwise
are matched by pattern and shown as '-' when absent.
  tools/ncu_kernel_metrics.py kernels.csv
"""
import argparse
import collections
import csv
import re
import sys

from ncu_step_summary import csv_lines, short_name

# Headline columns: (label, metric name pattern).
HEADLINE = [
    ("us", r"^gpu__time_duration\.sum$"),
    ("regs", r"^launch__registers_per_thread$"),
    ("blocks/SM", r"^launch__occupancy_limit_(registers|shared_mem|warps|blocks)$"),
    ("occ %", r"^sm__warps_active\.avg\.pct_of_peak_sustained_active$"),
    ("issue %", r"^sm__inst_issued\.avg\.pct_of_peak_sustained_active$"),
    ("tensor %", r"^sm__pipe_tensor_op_hmma_cycles_active\.avg\.pct_of_peak_sustained_active$"),
]
# Per-pipe use and per-reason stalls: the capture group names the pipe or the reason.
PIPES = r"^sm__inst_executed_pipe_(\w+?)\.avg\.pct_of_peak_sustained_active$"
STALLS = r"^smsp__average_warps?_(?:issue_stalled|latency_issue_stalled)_(\w+?)_per_issue_active\.ratio$"


def number(text):
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def read_launches(path):
    table = list(csv.reader(csv_lines(path)))
    if len(table) < 3 or "Kernel Name" not in table[0]:
        sys.exit(f"{path}: no ncu raw-page CSV (a header, a units row and one row per launch)")
    header, units = table[0], table[1]
    name_col = header.index("Kernel Name")
    launches = []
    for row in table[2:]:
        values = {}
        for metric, unit, text in zip(header, units, row):
            value = number(text)
            if value is not None and metric != "ID":
                scale = {"nsecond": 1e-3, "ns": 1e-3, "msecond": 1e3, "ms": 1e3}.get(unit, 1.0)
                values[metric] = value * scale if metric.startswith("gpu__time") else value
        launches.append((row[name_col], values))
    return launches


def mean_by_kernel(launches):
    sums = collections.defaultdict(collections.Counter)
    counts = collections.Counter()
    for name, values in launches:
        key = short_name(name, 60)
        counts[key] += 1
        sums[key].update(values)
    return {k: {m: v / counts[k] for m, v in sums[k].items()} for k in counts}, counts


def matching(metrics, pattern):
    return {re.match(pattern, m): v for m, v in metrics.items() if re.match(pattern, m)}


def headline(metrics, pattern):
    found = matching(metrics, pattern)
    if not found:
        return "-"
    if "occupancy_limit" in pattern:  # the binding limit and what binds it
        match, value = min(found.items(), key=lambda kv: kv[1])
        return f"{value:.0f} ({match.group(1)})"
    return f"{next(iter(found.values())):.1f}"


def ranked(metrics, pattern, top):
    found = sorted(((v, m.group(1)) for m, v in matching(metrics, pattern).items()), reverse=True)
    return ", ".join(f"{name} {value:.1f}" for value, name in found[:top] if value > 0) or "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv")
    args = parser.parse_args()
    kernels, counts = mean_by_kernel(read_launches(args.csv))
    columns = [label for label, _ in HEADLINE]
    print(f"{'kernel':<60} {'n':>3} " + " ".join(f"{c:>16}" for c in columns))
    for name in sorted(kernels, key=lambda k: -kernels[k].get("gpu__time_duration.sum", 0)):
        metrics = kernels[name]
        cells = [headline(metrics, pattern) for _, pattern in HEADLINE]
        print(f"{name:<60} {counts[name]:>3} " + " ".join(f"{c:>16}" for c in cells))
        print(f"    pipes, % of peak: {ranked(metrics, PIPES, 5)}")
        print(f"    stalls, cycles per issued instruction: {ranked(metrics, STALLS, 6)}")


if __name__ == "__main__":
    main()
