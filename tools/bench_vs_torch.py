#!/usr/bin/python3
"""One training step of latte against PyTorch eager on the same model, measured side by side in one run.

    /usr/bin/python3 tools/bench_vs_torch.py [--latte build/release/latte] [--threads K] [--steps N] [--rounds R]
        [--suite configs/exp3/suite.toml] [--scale cpu] [--variant deepseek_v3_small]

The model is a variant of a suite at one of its scales: the variant's config with the scale's `set` list and its
`per_variant` list as --set overrides, read from the suite file, so the benchmark follows the suite.
`latte config show` resolves it; the PyTorch side builds its model from that resolved [model] table.

- latte: `latte train` for N steps (no evaluation or checkpoints until the end); its per-step wall times are the
  `step_time_s` of metrics.jsonl.
- PyTorch: tools/reference/torch_train_model.py in the config's dtype (float32 by default), random token windows
  (batch_size x (seq_len + 1) ids below vocab_size), and per step what latte's trainer does: forward, loss (LM + MoE
  balance + MTP), backward, global gradient-norm clipping, torch.optim.AdamW (weight decay on matrices only, latte's
  betas and eps) and the aux-loss-free correction-bias update. Before timing, that model's loss and gradients are
  checked against latte_ref.py in float64.

Both sides run with K threads (train.threads, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, torch.set_num_threads) and the
same OMP_WAIT_POLICY: the caller's, else passive. Debian's torch calls OpenBLAS, which runs its own pthreads, from
OpenMP code; with spinning (active) OpenMP workers the two fight for the cores: on 2 cores a PyTorch step took 0.6 s
on a quiet machine and 4-9 s on a busy one instead of 0.25-0.4 s with passive workers. latte is about 15% faster with
active workers, so the shared passive setting understates the ratio a little rather than inflating it.
Steps 1 and 2 of every run are warm-up; the reported time is the median of steps 3..N over all rounds. The R rounds
alternate the two sides so that load from other processes falls on both. Prints the threads, tokens per step, ms/step
of each side and the ratio torch/latte, and exits 0 (1 only when something fails: the latte run, the parity check, a
bad argument).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARMUP_STEPS = 2  # steps 1..2 of a run fill caches and the allocator: not timed
# latte's defaults for [train] keys a resolved config may leave out (engine/train/run_config.h).
TRAIN_DEFAULTS = {"dtype": "float32", "grad_accum": 1, "weight_decay": 0.01, "beta1": 0.9, "beta2": 0.95,
                  "eps": 1e-8, "grad_clip": 1.0, "lr": 3e-4, "seed": 1}
# latte extensions of [model.moe] that latte_ref.py does not model, with the value that means "off".
LATTE_ONLY_MOE_KEYS = {"capacity_factor": 0.0}


def fail(message):
    sys.exit(f"bench_vs_torch: {message}")


def default_latte():
    for build in ("release", "torch", "dev"):
        path = os.path.join(REPO, "build", build, "latte")
        if os.access(path, os.X_OK):
            return path
    return os.path.join(REPO, "build", "release", "latte")


def suite_overrides(suite_path, scale, variant):
    """(variant config path, --set overrides) of `variant` at `scale` in the suite file."""
    with open(suite_path, "rb") as f:
        suite = tomllib.load(f)
    variants = {os.path.splitext(os.path.basename(v))[0]: v for v in suite.get("suite", {}).get("variants", [])}
    if variant not in variants:
        fail(f"{suite_path}: no variant '{variant}' in [suite] variants (has {', '.join(variants)})")
    scales = suite.get("scales", {})
    if scale not in scales:
        fail(f"{suite_path}: no [scales.{scale}] (has {', '.join(scales)})")
    sets = list(scales[scale].get("set", [])) + list(scales[scale].get("per_variant", {}).get(variant, []))
    return os.path.join(os.path.dirname(suite_path), variants[variant]), sets


def resolve_config(latte, config, overrides):
    """The resolved document `latte config show` prints, parsed."""
    cmd = [latte, "config", "show", config] + [a for o in overrides for a in ("--set", o)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
    return tomllib.loads(done.stdout)


def model_config(ref, doc):
    """latte_ref's ModelConfig of the resolved document; a latte-only key must be at its 'off' value."""
    model = json.loads(json.dumps(doc["model"]))  # a deep copy
    moe = model.get("moe", {})
    for key, off in LATTE_ONLY_MOE_KEYS.items():
        if moe.get(key, off) != off:
            fail(f"model.moe.{key} = {moe[key]} is a latte extension the PyTorch model does not have; "
                 f"benchmark with {key} = {off}")
        moe.pop(key, None)
    return ref.config_from_dict({"model": model}, "resolved config")


def run_latte(latte, config, overrides, steps, threads, env):
    """(per-step seconds of steps WARMUP_STEPS+1..steps, parameter count) of one `latte train` run."""
    with tempfile.TemporaryDirectory(prefix="latte_bench_") as out:
        sets = overrides + [f"train.steps={steps}", f"train.threads={threads}", "train.checkpoint_every=0",
                            "eval.every=0", "eval.length_multipliers=[1]", "eval.windows=1",
                            f"output.dir=\"{out}\""]
        cmd = [latte, "train", config, "--no-progress"] + [a for o in sets for a in ("--set", o)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            fail(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()}")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        with open(os.path.join(out, "summary.json")) as f:
            params_total = json.load(f)["params_total"]
    times = [r["step_time_s"] for r in rows if r["step"] > WARMUP_STEPS]
    if len(times) != steps - WARMUP_STEPS:
        fail(f"latte wrote {len(rows)} metric lines for {steps} steps")
    return times, params_total


class TorchTrainer:
    """The PyTorch side: parameters, AdamW and one training step as latte's trainer runs it."""

    def __init__(self, torch, model, cfg, train, seed):
        self.torch, self.model, self.cfg = torch, model, cfg
        self.batch, self.seq_len = train["batch_size"], train["seq_len"]
        self.grad_accum, self.grad_clip = train["grad_accum"], train["grad_clip"]
        self.lr = train["lr"]
        dtype = {"float32": torch.float32, "float64": torch.float64}.get(train["dtype"])
        if dtype is None:
            fail(f"train.dtype = \"{train['dtype']}\": the CPU benchmark runs float32 or float64")
        self.params, self.buffers = model.init_parameters(cfg, dtype, seed)
        matrices = [p for p in self.params.values() if p.dim() >= 2]
        vectors = [p for p in self.params.values() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": matrices, "weight_decay": train["weight_decay"]}, {"params": vectors, "weight_decay": 0.0}],
            lr=self.lr, betas=(train["beta1"], train["beta2"]), eps=train["eps"])
        self.data = torch.Generator().manual_seed(seed)
        self.noise = torch.Generator().manual_seed(seed ^ 0x5EED)
        self.bias_speed = cfg.moe.bias_update_speed if cfg.moe is not None else 0.0

    def step(self):
        torch = self.torch
        for p in self.params.values():
            p.grad = None
        loads = {}
        for _ in range(self.grad_accum):
            tokens = torch.randint(0, self.cfg.vocab_size, (self.batch, self.seq_len + 1), generator=self.data)
            out = self.model.forward(self.cfg, self.params, self.buffers, tokens, noise=self.noise)
            (out["loss"] / self.grad_accum).backward()
            out["loss"].item()
            for name, load in out["loads"].items():
                loads[name] = loads[name] + load if name in loads else load
        parameters = list(self.params.values())
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip)
        else:  # latte computes the norm for its log either way
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in parameters if p.grad is not None]))
        self.optimizer.step()
        if self.bias_speed > 0:
            self.model.update_correction_bias(self.buffers, loads, self.bias_speed)

    def time_steps(self, steps):
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - t0)
        return times[WARMUP_STEPS:]


def main(argv=None):
    parser = argparse.ArgumentParser(description="latte vs PyTorch eager: one training step on the same model.")
    parser.add_argument("--latte", default=default_latte(), help="the latte binary (default: %(default)s)")
    parser.add_argument("--suite", default=os.path.join(REPO, "configs", "exp3", "suite.toml"))
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--variant", default="deepseek_v3_small")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of both sides (default: "
                        "%(default)s, the cores of this machine)")
    parser.add_argument("--steps", type=int, default=20, help="steps per run, the first 2 untimed")
    parser.add_argument("--rounds", type=int, default=3, help="latte and PyTorch runs, alternating")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.steps <= WARMUP_STEPS or args.rounds < 1:
        fail(f"need --threads >= 1, --steps > {WARMUP_STEPS}, --rounds >= 1; got {args.threads}, {args.steps}, "
             f"{args.rounds}")
    if not os.access(args.latte, os.X_OK):
        fail(f"{args.latte}: no latte binary (build one, or pass --latte)")

    # Thread counts must be in the environment before torch (and its OpenMP and OpenBLAS) loads.
    env = dict(os.environ)
    settings = {"OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
                "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "passive")}
    os.environ.update(settings)
    env.update(settings)
    sys.path.insert(0, os.path.join(REPO, "tools", "reference"))
    import latte_ref as ref  # exits with a message when torch is not importable
    import torch
    import torch_train_model as model
    torch.set_num_threads(args.threads)

    config, overrides = suite_overrides(args.suite, args.scale, args.variant)
    doc = resolve_config(args.latte, config, overrides)
    cfg = model_config(ref, doc)
    train = {**TRAIN_DEFAULTS, **doc.get("train", {})}

    # float64 parity of the PyTorch model with the reference, on this config (short sequences keep it quick).
    worst = model.check_against_reference(cfg, args.seed)
    if worst > 1e-10:  # the same float64 formulas summed in another order agree to ~1e-15
        fail(f"torch_train_model.py differs from latte_ref.py by {worst:.2e} (relative, bound 1e-10)")

    trainer = TorchTrainer(torch, model, cfg, train, args.seed)
    torch_params = sum(p.numel() for p in trainer.params.values())
    latte_times, torch_times = [], []
    for r in range(args.rounds):
        times, latte_params = run_latte(args.latte, config, overrides, args.steps, args.threads, env)
        if latte_params != torch_params:
            fail(f"latte's model has {latte_params:,} parameters, the PyTorch model {torch_params:,}: "
                 "not the same model")
        latte_times += times
        torch_times += trainer.time_steps(args.steps)
        timed = args.steps - WARMUP_STEPS
        print(f"round {r + 1}/{args.rounds}: latte {1e3 * statistics.median(latte_times[-timed:]):.1f} ms/step, "
              f"torch {1e3 * statistics.median(torch_times[-timed:]):.1f} ms/step", flush=True)

    latte_ms, torch_ms = 1e3 * statistics.median(latte_times), 1e3 * statistics.median(torch_times)
    tokens = train["batch_size"] * train["seq_len"] * train["grad_accum"]
    print(f"model            {args.variant} at scale {args.scale} ({torch_params:,} parameters on both sides, "
          f"{train['dtype']})")
    print(f"threads          {args.threads} (torch.get_num_threads() {torch.get_num_threads()}, "
          f"OMP_WAIT_POLICY={settings['OMP_WAIT_POLICY']})")
    print(f"tokens per step  {tokens} ({train['batch_size']} x {train['seq_len']} x grad_accum "
          f"{train['grad_accum']})")
    print(f"parity           torch model vs latte_ref.py in float64: {worst:.1e} relative")
    print(f"latte            {latte_ms:.1f} ms/step (median of {len(latte_times)} steps)")
    print(f"torch {torch.__version__:<10} {torch_ms:.1f} ms/step (median of {len(torch_times)} steps)")
    target = " (target >= 2)" if (args.variant, args.scale) == ("deepseek_v3_small", "cpu") else ""
    print(f"ratio torch/latte {torch_ms / latte_ms:.2f}{target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
