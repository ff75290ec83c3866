#!/usr/bin/env python3
"""Regenerates the parity fixtures tests/fixtures/<case>/ from the float64 reference (latte_ref.py).

    python3 tools/reference/make_fixtures.py            # all cases (Debian python3 with python3-torch)
    python3 tools/reference/make_fixtures.py --check     # run the self-checks only, write nothing

Each case directory holds
    config.toml           the [model...] tables of SPEC §7 (nothing else)
    weights.safetensors   every parameter (F32), plus e_score_correction_bias for noaux_tc layers
    tokens.txt            SPEC §8: one sequence per line, ids separated by spaces
    expected.safetensors  F64: logits [B,T,V], lm_loss, aux_loss, loss (shape []), grad.<name> = d loss / d name
and tests/integration/fixtures.md describes the cases.

Weights are drawn in float64 from a seeded numpy generator and rounded to float32 before the reference runs, so both
sides see identical weights. A case is reseeded until every routing decision is at least ROUTING_MARGIN away from a
tie, every routed expert gets a token, and (noaux_tc) the correction bias changes some selection.

Self-checks, all before anything is written (the script exits 1 when one fails):
- gradients of a few entries of several parameters agree with central finite differences of the float64 loss;
- for MLA cases, the absorbed computation on the compressed cache (SPEC §1) equals the full attention output;
- the same reference run in float32 stays well inside the tolerances of compare.py (so they are attainable).
"""

import argparse
import os
import sys
import tomllib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import latte_ref  # noqa: E402  (exits with a clear message when PyTorch is missing)
import safetensors_io  # noqa: E402
import torch  # noqa: E402
from compare import GRAD_TOLERANCE, VALUE_TOLERANCE, relative_error  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures")
FIXTURES_DOC = os.path.join(REPO, "tests", "integration", "fixtures.md")
ROUTING_MARGIN = 1e-5  # a float32 engine's router scores differ from float64 by ~1e-7; 100x headroom
# Weight std: 0.02 times 20. With hidden 16 this makes attention clearly non-uniform (mean top probability
# 0.5-0.8 against 0.2-0.25 uniform) and router logits spread over a few units, without saturating softmax.
WEIGHT_STD = 0.02 * 20
MIN_ROUTE_CHANGES = 3  # tokens whose experts the correction bias, and the group limit, must each change
FD_STEP = 1e-6  # central differences in float64: truncation ~1e-12, rounding ~1e-16/1e-6 = 1e-10 (relative)
FD_TOLERANCE = 1e-6  # |fd - grad| / max|grad tensor|; observed errors are ~1e-9
ABSORBED_TOLERANCE = 1e-12  # same math in float64, different association: ~1e-15 expected
FLOAT32_HEADROOM = 10  # the float32 twin must beat compare.py's tolerances by this factor


def mla_attention(**kw):
    return {"type": "mla", "num_attention_heads": 2, **kw}


def mha_attention(**kw):
    return {"type": "mha", **kw}


def small_mla(**kw):
    """The attention of the cases that test something else: MLA with the DeepSeek-V3 nope:rope = 2:1 shape."""
    table = dict(q_lora_rank=8, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=4, v_head_dim=8,
                 attention_bias=False, impl="flash", rope_interleave=True)
    table.update(kw)
    return mla_attention(**table)


def model(hidden, attention, layers=1, intermediate=32, rope=None, moe=None, mtp=None, **top):
    table = {"vocab_size": 32, "hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": intermediate,
             "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "initializer_range": WEIGHT_STD,
             "tie_word_embeddings": False, **top,
             "attention": attention, "rope": rope or {"type": "default", "theta": 10000.0}}
    if moe is not None:
        table["moe"] = moe
    if mtp is not None:
        table["mtp"] = mtp
    return table


def moe_table(**kw):
    table = {"n_routed_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 0, "moe_intermediate_size": 8,
             "scoring_func": "softmax", "topk_method": "greedy", "n_group": 1, "topk_group": 1,
             "norm_topk_prob": False, "routed_scaling_factor": 1.0, "first_k_dense_replace": 0, "moe_layer_freq": 1,
             "bias_update_speed": 0.0, "seq_aux_loss_alpha": 0.0, "aux_loss_alpha": 0.0, "router_noise_std": 0.0}
    table.update(kw)
    return table


# Each case: what it exercises, batch B x length T, first seed to try, the [model] table.
CASES = [
    dict(name="q_lora", about="seed variant q_lora: q_a_proj -> q_a_layernorm -> q_b_proj, v/rope/nope 64/64/0, "
         "attention_bias, naive", B=2, T=8, seed=101,
         model=model(16, mla_attention(q_lora_rank=16, kv_lora_rank=8, qk_nope_head_dim=0, qk_rope_head_dim=64,
                                       v_head_dim=64, attention_bias=True, impl="naive"))),
    dict(name="flash_attention", about="seed variant flash_attention: q_proj (q_lora_rank 0), 64/64/0, no bias, "
         "flash", B=2, T=8, seed=102,
         model=model(16, mla_attention(q_lora_rank=0, kv_lora_rank=16, qk_nope_head_dim=0, qk_rope_head_dim=64,
                                       v_head_dim=64, attention_bias=False, impl="flash"))),
    dict(name="mixed_heads", about="seed variant mixed_heads: v/rope/nope 64/32/16 (V wider than QK), bias, naive",
         B=2, T=8, seed=103,
         model=model(16, mla_attention(q_lora_rank=8, kv_lora_rank=12, qk_nope_head_dim=16, qk_rope_head_dim=32,
                                       v_head_dim=64, attention_bias=True, impl="naive"))),
    dict(name="advanced_rope", about="seed variant advanced_rope: linear RoPE x2, theta 50000, 64/64/0, no bias",
         B=2, T=8, seed=104,
         model=model(16, mla_attention(q_lora_rank=12, kv_lora_rank=16, qk_nope_head_dim=0, qk_rope_head_dim=64,
                                       v_head_dim=64, attention_bias=False, impl="naive"),
                     rope={"type": "linear", "theta": 50000.0, "factor": 2.0})),
    dict(name="hybrid_lora", about="seed variant hybrid_lora: v/rope/nope 48/40/8, bias, flash", B=2, T=8, seed=105,
         model=model(16, mla_attention(q_lora_rank=8, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=40,
                                       v_head_dim=48, attention_bias=True, impl="flash"))),
    dict(name="yarn", about="YaRN factor 4 with L0 = 8 < T = 12; betas put the ramp at low 1, high 3 "
         "(ramp 0,0,.5,1,...); mscale 0.9 / mscale_all_dim 0.7 scale both cos/sin and softmax_scale; nope:rope 2:1",
         B=2, T=12, seed=106,
         model=model(16, mla_attention(q_lora_rank=8, kv_lora_rank=8, qk_nope_head_dim=32, qk_rope_head_dim=16,
                                       v_head_dim=16, attention_bias=False, impl="flash"),
                     rope={"type": "yarn", "theta": 10000.0, "factor": 4.0, "original_max_position_embeddings": 8,
                           "beta_fast": 0.3, "beta_slow": 0.05, "mscale": 0.9, "mscale_all_dim": 0.7})),
    dict(name="rope_halves", about="rope_interleave = false: RoPE on halves (x_i, x_{i+d/2}), MLA rope dim 16",
         B=2, T=8, seed=107,
         model=model(16, mla_attention(q_lora_rank=8, kv_lora_rank=8, qk_nope_head_dim=8, qk_rope_head_dim=16,
                                       v_head_dim=8, attention_bias=True, impl="naive", rope_interleave=False))),
    dict(name="dynamic_ntk", about="dynamic NTK RoPE, factor 2, T = 12 > max_position_embeddings = 8 (theta x 2^(4/3) "
         "for rope dim 8)", B=2, T=12, seed=108,
         model=model(16, small_mla(qk_nope_head_dim=16, qk_rope_head_dim=8), max_position_embeddings=8,
                     rope={"type": "dynamic", "theta": 10000.0, "factor": 2.0})),
    dict(name="llama3", about="llama3 RoPE (factor 8, L0 48, low 1, high 4: one frequency kept, one blended, six "
         "divided) on MHA, 4 heads of 16, halves layout", B=2, T=8, seed=109,
         model=model(16, mha_attention(num_attention_heads=4, num_key_value_heads=4, head_dim=16,
                                       attention_bias=False, impl="flash", rope_interleave=False),
                     rope={"type": "llama3", "theta": 10000.0, "factor": 8.0, "original_max_position_embeddings": 48,
                           "low_freq_factor": 1.0, "high_freq_factor": 4.0})),
    dict(name="mha_gqa", about="baseline MHA with grouped-query attention: 4 heads, 2 key/value heads, head_dim 8, "
         "bias on q/k/v/o, rms_norm_eps 1e-3 (large enough that ignoring the key shows)", B=2, T=8, seed=110,
         model=model(16, mha_attention(num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                       attention_bias=True, impl="naive"), rms_norm_eps=1e-3)),
    dict(name="moe_sigmoid_noaux", about="DeepSeek-V3 router: sigmoid, noaux_tc (n_group 2, topk_group 1), 8 experts "
         "top-2, 1 shared, nonzero correction bias, norm_topk_prob, routed_scaling_factor 2.5, sequence-wise loss "
         "0.01; layer 0 dense (first_k_dense_replace 1), layer 1 MoE", B=2, T=8, seed=111,
         model=model(16, small_mla(), layers=2,
                     moe=moe_table(n_shared_experts=1, scoring_func="sigmoid", topk_method="noaux_tc", n_group=2,
                                   topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5,
                                   first_k_dense_replace=1, seq_aux_loss_alpha=0.01))),
    dict(name="moe_softmax_switch", about="the seed's router: softmax, greedy top-2 of 8, no shared expert, "
         "unnormalized weights, batch-level Switch loss 0.01; moe_layer_freq 2 makes layer 0 MoE, layer 1 dense",
         B=2, T=8, seed=112,
         model=model(16, small_mla(), layers=2, moe=moe_table(moe_layer_freq=2, aux_loss_alpha=0.01))),
    dict(name="moe_group_limited", about="group_limited_greedy (softmax, 4 groups of 2, best 2 groups by max, top-3 "
         "of their 4 experts), 2 shared experts (width 2 x 8), routed_scaling_factor 1.5, sequence-wise 0.02 plus "
         "Switch 0.01 losses",
         B=2, T=8, seed=113,
         model=model(16, small_mla(),
                     moe=moe_table(num_experts_per_tok=3, n_shared_experts=2, topk_method="group_limited_greedy",
                                   n_group=4, topk_group=2,
                                   routed_scaling_factor=1.5, seq_aux_loss_alpha=0.02, aux_loss_alpha=0.01))),
    dict(name="tied_embeddings", about="tie_word_embeddings: lm_head is embed_tokens (no lm_head.weight); two layers",
         B=2, T=8, seed=114, model=model(16, small_mla(), layers=2, tie_word_embeddings=True)),
    dict(name="mtp", about="multi-token prediction, depth 1, loss_weight 0.3 (one dense module on top of one layer)",
         B=2, T=8, seed=115, model=model(16, small_mla(), mtp={"num_layers": 1, "loss_weight": 0.3})),
    dict(name="mtp_depth2", about="multi-token prediction, depth 2, loss_weight 0.5: module 1 reads module 0's "
         "block output; each module weighs 0.25", B=2, T=10, seed=116,
         model=model(16, small_mla(), mtp={"num_layers": 2, "loss_weight": 0.5})),
]


# ----------------------------------------------------------------------------------------------------------------
# Config text, weights, tokens.


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    return '"' + value + '"'


def config_text(case):
    table = case["model"]
    lines = [f"# Parity fixture '{case['name']}': {case['about']}.",
             "# Generated by tools/reference/make_fixtures.py; see tests/integration/fixtures.md.", "", "[model]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for name in ("attention", "rope", "moe", "mtp"):
        if name in table:
            lines += ["", f"[model.{name}]"] + [f"{k} = {toml_value(v)}" for k, v in table[name].items()]
    return "\n".join(lines) + "\n"


def draw_weights(cfg, rng, std):
    """float64 draws rounded to float32: linear weights N(0, std), biases N(0, 0.2), norm weights U(0.8, 1.2),
    correction biases N(0, 0.25) (about the spread of sigmoid scores, so the bias changes selections)."""
    params = {}
    for name, shape in latte_ref.parameter_shapes(cfg).items():
        if name.endswith(".bias"):
            values = rng.normal(0.0, 0.2, shape)
        elif len(shape) == 1:
            values = rng.uniform(0.8, 1.2, shape)
        else:
            values = rng.normal(0.0, std, shape)
        params[name] = values.astype(np.float32)
    buffers = {name: rng.normal(0.0, 0.25, shape).astype(np.float32)
               for name, shape in latte_ref.buffer_shapes(cfg).items()}
    return params, buffers


def as_torch(arrays, dtype, grad):
    return {n: torch.tensor(a, dtype=dtype, requires_grad=grad) for n, a in arrays.items()}


def routing_problems(trace, cfg):
    """Why a draw is rejected: a near-tie, an idle expert, or a correction bias or group limit that changes
    (almost) nothing."""
    problems = []
    for record in trace.get("routing", []):
        for key in ("group_margin", "expert_margin"):
            if key in record and record[key] < ROUTING_MARGIN:
                problems.append(f"{record['layer']} {key} {record[key]:.2e}")
        if min(record["load"]) == 0:
            problems.append(f"{record['layer']} idle expert, load {record['load']}")
        for key in ("changed_by_bias", "changed_by_groups"):
            if record.get(key, MIN_ROUTE_CHANGES) < MIN_ROUTE_CHANGES:
                problems.append(f"{record['layer']} {key} only {record[key]} tokens")
    return problems


def draw_case(case, cfg):
    """First seed from case['seed'] upward whose routing is unambiguous. Returns (seed, params, buffers, tokens)."""
    for seed in range(case["seed"], case["seed"] + 50):
        rng = np.random.default_rng(seed)
        params, buffers = draw_weights(cfg, rng, WEIGHT_STD)
        tokens = torch.tensor(rng.integers(0, cfg.vocab_size, (case["B"], case["T"])), dtype=torch.int64)
        trace = {}
        with torch.no_grad():
            latte_ref.forward(cfg, as_torch(params, torch.float64, False), as_torch(buffers, torch.float64, False),
                              tokens, trace)
        problems = routing_problems(trace, cfg)
        if not problems:
            return seed, params, buffers, tokens
        print(f"  {case['name']}: seed {seed} rejected: {'; '.join(problems)}")
    raise SystemExit(f"{case['name']}: no seed in 50 tries gives unambiguous routing")


# ----------------------------------------------------------------------------------------------------------------
# Self-checks.


def finite_difference_check(cfg, params, buffers, tokens, grads, rng):
    """Max over a few entries of several parameters of |fd - autograd| / max|autograd grad of that tensor|."""
    names = list(params)
    picks = [n for n in names if n.startswith("model.layers.0.self_attn.")][:2]
    picks += [n for n in names if n.endswith("mlp.gate.weight")][:1]
    picks += [n for n in names if n.endswith("eh_proj.weight")][:1]
    picks += ["model.layers.0.input_layernorm.weight", "model.embed_tokens.weight"]
    worst, detail = 0.0, ""
    with torch.no_grad():
        for name in picks:
            p = params[name]
            for _ in range(2):
                idx = tuple(int(rng.integers(0, s)) for s in p.shape)
                original = p[idx].item()
                p[idx] = original + FD_STEP
                up = latte_ref.forward(cfg, params, buffers, tokens)["loss"].item()
                p[idx] = original - FD_STEP
                down = latte_ref.forward(cfg, params, buffers, tokens)["loss"].item()
                p[idx] = original
                fd = (up - down) / (2 * FD_STEP)
                g = grads[name]
                err = abs(fd - g[idx]) / max(float(np.max(np.abs(g))), 1e-300)
                if err > worst:
                    worst, detail = err, f"{name}{list(idx)} fd {fd:.6e} autograd {g[idx]:.6e}"
    return worst, detail


def absorbed_check(cfg, params, tokens):
    """Layer 0: SPEC §1 absorbed attention on the compressed cache vs the full computation (relative error)."""
    with torch.no_grad():
        h = params["model.embed_tokens.weight"][tokens]
        x = latte_ref.rms_norm(h, params["model.layers.0.input_layernorm.weight"], cfg.rms_norm_eps)
        cos, sin = latte_ref.rope_tables(cfg, tokens.shape[1], torch.float64)
        full = latte_ref.mla(params, "model.layers.0.", x, cfg, cos, sin)
        absorbed = latte_ref.mla_absorbed(params, "model.layers.0.", x, cfg, cos, sin)
    return relative_error(absorbed.numpy(), full.numpy())


def float32_twin(cfg, params32, buffers32, tokens, expected):
    """The same reference in float32: worst relative error of logits/losses and of gradients vs float64."""
    params = as_torch(params32, torch.float32, True)
    out = latte_ref.forward(cfg, params, as_torch(buffers32, torch.float32, False), tokens)
    out["loss"].backward()
    values = max(relative_error(out[k].detach().numpy(), expected[k])
                 for k in ("logits", "lm_loss", "aux_loss", "loss"))
    grads = max(relative_error(params[n].grad.numpy(), expected[f"grad.{n}"]) for n in params)
    return values, grads


def attention_sharpness(trace):
    """Mean over query rows t >= 1 of the largest attention probability, and the same for uniform attention."""
    probs = trace["attention_probs"][0]
    T = probs.shape[-1]
    top = probs.max(-1).values[..., 1:].mean().item()
    uniform = float(np.mean([1.0 / (t + 1) for t in range(1, T)]))
    return top, uniform


# ----------------------------------------------------------------------------------------------------------------


def build_case(case):
    doc = {"model": case["model"]}
    cfg = latte_ref.config_from_dict(doc, case["name"])
    seed, params32, buffers32, tokens = draw_case(case, cfg)

    params = as_torch(params32, torch.float64, True)
    buffers = as_torch(buffers32, torch.float64, False)
    trace = {}
    out = latte_ref.forward(cfg, params, buffers, tokens, trace)
    out["loss"].backward()
    expected = {k: v.detach().numpy() for k, v in out.items()}
    grads = {n: p.grad.numpy().copy() for n, p in params.items()}
    expected.update({f"grad.{n}": g for n, g in grads.items()})

    checks = {"seed": seed}
    checks["fd"], checks["fd_detail"] = finite_difference_check(cfg, params, buffers, tokens, grads,
                                                                np.random.default_rng(seed))
    if cfg.attention.type == "mla":
        checks["absorbed"] = absorbed_check(cfg, params, tokens)
    checks["f32_values"], checks["f32_grads"] = float32_twin(cfg, params32, buffers32, tokens, expected)
    checks["sharpness"] = attention_sharpness(trace)
    checks["routing"] = trace.get("routing", [])
    checks["mtp_loss"] = trace.get("mtp_loss", [])
    checks["params"] = sum(int(np.prod(s)) for s in latte_ref.parameter_shapes(cfg).values())
    checks["values"] = {k: float(expected[k]) for k in ("lm_loss", "aux_loss", "loss")}

    failures = []
    if checks["fd"] > FD_TOLERANCE:
        failures.append(f"finite differences {checks['fd']:.2e} > {FD_TOLERANCE:g} ({checks['fd_detail']})")
    if checks.get("absorbed", 0.0) > ABSORBED_TOLERANCE:
        failures.append(f"absorbed MLA differs from full by {checks['absorbed']:.2e}")
    if checks["f32_values"] * FLOAT32_HEADROOM > VALUE_TOLERANCE:
        failures.append(f"float32 twin logits/losses error {checks['f32_values']:.2e}")
    if checks["f32_grads"] * FLOAT32_HEADROOM > GRAD_TOLERANCE:
        failures.append(f"float32 twin gradient error {checks['f32_grads']:.2e}")
    files = {
        "config.toml": config_text(case),
        "tokens.txt": "\n".join(" ".join(str(int(t)) for t in row) for row in tokens) + "\n",
        "weights": ({**params32, **buffers32}, {}),
        "expected": (expected, {k: "F64" for k in expected}),
    }
    # The written config must parse back to the configuration the expected values were computed with.
    reparsed = latte_ref.config_from_dict(tomllib.loads(files["config.toml"]), case["name"])
    if reparsed != cfg:
        failures.append("config.toml does not round-trip")
    return cfg, checks, failures, files


def write_case(out_dir, case, files, seed):
    directory = os.path.join(out_dir, case["name"])
    os.makedirs(directory, exist_ok=True)
    for name in ("config.toml", "tokens.txt"):
        with open(os.path.join(directory, name), "w") as f:
            f.write(files[name])
    tensors, _ = files["weights"]
    safetensors_io.write(os.path.join(directory, "weights.safetensors"), tensors,
                         dtypes={k: "F32" for k in tensors})
    tensors, dtypes = files["expected"]
    safetensors_io.write(os.path.join(directory, "expected.safetensors"), tensors, dtypes=dtypes,
                         metadata={"generator": "tools/reference/make_fixtures.py", "case": case["name"],
                                   "seed": seed})


def describe(cfg, case):
    a = cfg.attention
    if a.type == "mla":
        attention = (f"MLA H={a.num_attention_heads} q_lora {a.q_lora_rank} kv_lora {a.kv_lora_rank} "
                     f"nope/rope/v {a.qk_nope_head_dim}/{a.qk_rope_head_dim}/{a.v_head_dim}")
    else:
        attention = f"MHA H={a.num_attention_heads} kv={a.num_key_value_heads} head_dim {a.head_dim}"
    flags = [f"bias {'on' if a.attention_bias else 'off'}", a.impl,
             "interleaved" if a.rope_interleave else "halves", f"rope {cfg.rope.type}"]
    return (f"d {cfg.hidden_size}, {cfg.num_hidden_layers} layer(s), V {cfg.vocab_size}, "
            f"B x T = {case['B']} x {case['T']}; {attention}; {', '.join(flags)}")


FIXTURES_HEADER = """\
# Parity fixtures

`tests/fixtures/<case>/` holds a model config, float32 weights, input tokens and the float64 answer of
the independent PyTorch reference (`tools/reference/latte_ref.py`, written from SPEC.md alone):

- `config.toml`: only the SPEC §7 `[model...]` tables; `latte forward` runs it as is.
- `weights.safetensors`: every parameter by its SPEC name (F32), plus `mlp.gate.e_score_correction_bias`
  in noaux_tc layers. The reference computed with exactly these float32 values, widened to float64.
- `tokens.txt`: SPEC §8 format, B lines of T ids.
- `expected.safetensors` (F64): `logits` [B,T,V], `lm_loss`, `aux_loss`, `loss` (shape []), and
  `grad.<name>` = d loss / d parameter for every parameter (buffers have none).

Pass criterion (tools/reference/compare.py and the C++ test): max|latte - expected| / max|expected| per
tensor at most 1e-4 for logits and the losses, 1e-3 for each gradient. Every routing decision is at least
1e-5 from a tie and every routed expert receives tokens, so a float32 engine takes the same routes; in the
grouped cases the group limit (and the noaux_tc correction bias) changes the experts of at least 3 tokens.

All cases use hidden 16 and vocabulary 32 so that all fixtures together stay under 2 MB; the five seed
variants keep the seed's head dims (SPEC §6) with smaller ranks. Weights are N(0, 0.4) (RMSNorm weights
U(0.8, 1.2), biases N(0, 0.2)): attention is far from uniform and routing has clear winners.

Conventions the fixtures pin down where SPEC.md leaves a choice:

- RoPE positions are 0..L-1; dynamic NTK uses L = T (the length of the sequences in tokens.txt).
- Expert e is in group e // (n_routed_experts / n_group); groups are contiguous.
- MHA query head h reads key/value head h // (num_attention_heads / num_key_value_heads).
- MTP module m runs its block over positions 0..T-m-2 (those with an input token t_{i+m+1}); positions
  0..T-m-3 have a target t_{i+m+2} and enter its mean cross-entropy, weighted loss_weight / D. Module 0
  reads the main model's last hidden state before model.norm, module m > 0 module m-1's block output.
  The MTP cases are dense, so no choice about balance losses inside MTP blocks is pinned.

Regenerate with `python3 tools/reference/make_fixtures.py` (tools/reference/README.md).

| case | exercises | shape |
|---|---|---|
"""


def fixtures_markdown(rows):
    return FIXTURES_HEADER + "".join(f"| {name} | {about} | {shape} |\n" for name, about, shape in rows)


def summary_line(name, checks):
    top, uniform = checks["sharpness"]
    v = checks["values"]
    parts = [f"{name:<19} seed {checks['seed']} params {checks['params']:>5}",
             f"loss {v['loss']:.6f} (lm {v['lm_loss']:.6f} aux {v['aux_loss']:.3e})",
             f"fd {checks['fd']:.1e}"]
    if "absorbed" in checks:
        parts.append(f"absorbed {checks['absorbed']:.1e}")
    parts.append(f"f32 {checks['f32_values']:.1e}/{checks['f32_grads']:.1e}")
    parts.append(f"attn top-p {top:.2f} (uniform {uniform:.2f})")
    for r in checks["routing"]:
        margin = min(r.get("group_margin", 1.0), r.get("expert_margin", 1.0))
        text = f"layer {r['layer'].split('.')[2]}: margin {margin:.1e} load {[int(x) for x in r['load']]}"
        if "changed_by_groups" in r:
            text += f" groups move {r['changed_by_groups']}"
        if "changed_by_bias" in r:
            text += f" bias moves {r['changed_by_bias']}"
        parts.append(text)
    if checks["mtp_loss"]:
        parts.append("mtp ce " + "/".join(f"{x:.4f}" for x in checks["mtp_loss"]))
    return "  ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="run the self-checks only; write nothing")
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixture root directory (default tests/fixtures)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    built, all_failures = [], []
    for case in CASES:
        cfg, checks, failures, files = build_case(case)
        built.append((case, cfg, checks, files))
        all_failures += [f"{case['name']}: {f}" for f in failures]
        print(summary_line(case["name"], checks))

    if all_failures:
        print("\nself-check FAILED:\n  " + "\n  ".join(all_failures))
        sys.exit(1)
    if args.check:
        print("\nself-checks passed; nothing written (--check)")
        return
    for case, _, checks, files in built:
        write_case(args.out, case, files, checks["seed"])
    total = sum(os.path.getsize(os.path.join(root, f)) for root, _, fs in os.walk(args.out) for f in fs)
    print(f"\nwrote {len(built)} cases to {args.out} ({total / 1e6:.2f} MB)")
    if os.path.abspath(args.out) == DEFAULT_OUT:  # the description belongs to the committed fixtures only
        with open(FIXTURES_DOC, "w") as f:
            f.write(fixtures_markdown([(c["name"], c["about"], describe(cfg, c)) for c, cfg, _, _ in built]))
        print(f"wrote {FIXTURES_DOC}")


if __name__ == "__main__":
    main()
