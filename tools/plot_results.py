#!/usr/bin/python3
"""Plots of a latte suite folder (the one holding results.json, as `latte suite` writes it).

    tools/plot_results.py SUITE_DIR

reads SUITE_DIR/results.json and the metrics.jsonl of every run it lists, and writes into
SUITE_DIR:
    loss_curves.png        train LM loss vs step per variant (moving average over ~1/25 of the run)
    val_loss.png           validation loss vs step (eval steps, then the final 1x evaluation)
    tokens_per_second.png  training throughput per variant (bar)
    peak_memory.png        allocator peak per variant in MiB (bar)
    ppl_vs_length.png      validation perplexity (log scale) vs eval length multiplier per variant
    expert_load.png        max/mean tokens per expert over training per MoE variant
                           (mean over MoE layers, same moving average); skipped when no run
                           logged MoE data
With several seeds per variant a line is the mean over seeds and the band (or error bar) is
one sample standard deviation (n - 1). Uses matplotlib with the Agg backend (Debian:
python3-matplotlib). Exits with status 1 and a message when results.json is missing or
unreadable.
"""

import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)

MIB = 1024.0 * 1024.0


def finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def mean_std(values):
    """Mean and sample standard deviation (n - 1; 0 for one value) of a non-empty list."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def read_metrics(run_dir):
    """The metric lines of a run; a missing file or a line cut short gives nothing for it."""
    lines = []
    try:
        with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
            for line in f:
                try:
                    lines.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except OSError:
        pass
    return lines


def moving_average(points, window):
    """Trailing moving average of [(step, value)] sorted by step."""
    out, acc = [], []
    for step, v in points:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append((step, sum(acc) / len(acc)))
    return out


def over_seeds(per_seed):
    """Mean and std per step of [{step: value}] over the seeds that have the step."""
    steps = sorted(set().union(*[s.keys() for s in per_seed])) if per_seed else []
    xs, means, stds = [], [], []
    for step in steps:
        vals = [s[step] for s in per_seed if step in s]
        m, sd = mean_std(vals)
        xs.append(step)
        means.append(m)
        stds.append(sd)
    return xs, means, stds


def draw(ax, xs, means, stds, label, color, seeds, marker=None):
    if not xs:
        return
    ax.plot(xs, means, label=label, color=color, marker=marker)
    if seeds > 1:
        ax.fill_between(xs, [m - s for m, s in zip(means, stds)],
                        [m + s for m, s in zip(means, stds)], color=color, alpha=0.2)


def save(fig, ax, path, title, xlabel, ylabel):
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print("wrote " + path)


def smoothed_series(runs, value_of):
    """Per seed {step: smoothed value} of the metric lines for which value_of gives a number."""
    per_seed = []
    for run in runs:
        points = [(m["step"], value_of(m)) for m in run["metrics"] if finite(m.get("step"))]
        points = [(s, v) for s, v in points if finite(v)]
        window = max(1, len(points) // 25)
        per_seed.append(dict(moving_average(points, window)))
    return per_seed


def train_loss(m):
    return m.get("lm_loss", m.get("loss"))


def expert_max_over_mean(m):
    layers = [l.get("max_over_mean") for l in m.get("moe") or []]
    layers = [v for v in layers if finite(v)]
    return sum(layers) / len(layers) if layers else None


def peak_mib(run):
    peak = (run.get("summary") or {}).get("peak_bytes")
    return peak / MIB if finite(peak) else None


def val_series(run):
    points = {m["step"]: m["val_loss"] for m in run["metrics"]
              if finite(m.get("step")) and finite(m.get("val_loss"))}
    summary = run.get("summary") or {}
    final = ((summary.get("length_extrapolation") or {}).get("1") or {}).get("val_loss")
    if finite(summary.get("steps")) and finite(final):
        points[summary["steps"]] = final
    return points


def bar_chart(path, title, ylabel, variants, colors, value_of):
    fig, ax = plt.subplots(figsize=(8, 5))
    names, means, errs, cols = [], [], [], []
    for name, runs in variants.items():
        vals = [value_of(r) for r in runs]
        vals = [v for v in vals if finite(v)]
        if not vals:
            continue
        m, sd = mean_std(vals)
        names.append(name)
        means.append(m)
        errs.append(sd if len(vals) > 1 else 0.0)
        cols.append(colors[name])
    ax.bar(range(len(names)), means, yerr=errs if any(errs) else None, color=cols, capsize=4)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    save(fig, ax, path, title, "", ylabel)


def main(argv):
    if len(argv) != 2:
        print("usage: plot_results.py SUITE_DIR", file=sys.stderr)
        return 2
    folder = argv[1]
    try:
        with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print("plot_results.py: cannot read %s/results.json: %s" % (folder, e), file=sys.stderr)
        return 1

    variants = {}  # name -> runs, in the order of results.json
    for run in results.get("runs", []):
        run = dict(run)
        run["metrics"] = read_metrics(run.get("run_dir", ""))
        variants.setdefault(run["variant"], []).append(run)
    palette = plt.get_cmap("tab10")
    colors = {name: palette(i % 10) for i, name in enumerate(variants)}
    heading = "%s (%s)" % (results.get("suite", "?"), results.get("scale", "?"))
    out = lambda name: os.path.join(folder, name)  # noqa: E731

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, runs in variants.items():
        xs, means, stds = over_seeds(smoothed_series(runs, train_loss))
        draw(ax, xs, means, stds, name, colors[name], len(runs))
    save(fig, ax, out("loss_curves.png"), "train LM loss, " + heading, "step", "loss (nats/token)")

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, runs in variants.items():
        xs, means, stds = over_seeds([val_series(r) for r in runs])
        draw(ax, xs, means, stds, name, colors[name], len(runs), marker="o")
    save(fig, ax, out("val_loss.png"), "validation loss, " + heading, "step", "loss (nats/token)")

    bar_chart(out("tokens_per_second.png"), "training throughput, " + heading, "tokens/s",
              variants, colors, lambda r: (r.get("summary") or {}).get("tokens_per_second"))
    bar_chart(out("peak_memory.png"), "peak memory (allocator), " + heading, "MiB", variants,
              colors, peak_mib)

    fig, ax = plt.subplots(figsize=(8, 5))
    multipliers = set()
    for name, runs in variants.items():
        per_seed = []
        for r in runs:
            at = (r.get("summary") or {}).get("length_extrapolation") or {}
            per_seed.append({int(k): v["val_ppl"] for k, v in at.items()
                             if k.isdigit() and finite((v or {}).get("val_ppl"))})
        xs, means, stds = over_seeds(per_seed)
        multipliers.update(xs)
        draw(ax, xs, means, stds, name, colors[name], len(runs), marker="o")
    ax.set_yscale("log")  # perplexity can grow by orders of magnitude past the trained length
    if multipliers:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(multipliers))
        ax.set_xticklabels(["%dx" % m for m in sorted(multipliers)])
    save(fig, ax, out("ppl_vs_length.png"), "perplexity vs eval length, " + heading,
         "eval length / training seq_len", "validation perplexity")

    moe = {name: runs for name, runs in variants.items()
           if any(expert_max_over_mean(m) is not None for r in runs for m in r["metrics"])}
    if moe:
        fig, ax = plt.subplots(figsize=(8, 5))
        for name, runs in moe.items():
            xs, means, stds = over_seeds(smoothed_series(runs, expert_max_over_mean))
            draw(ax, xs, means, stds, name, colors[name], len(runs))
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
        save(fig, ax, out("expert_load.png"), "expert load balance, " + heading, "step",
             "max / mean tokens per expert")
    else:
        print("no run logged MoE data: expert_load.png not written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
