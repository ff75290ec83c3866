#!/usr/bin/env python3
"""Independent PyTorch reference of the latte model, written from SPEC.md §1-§4 and §8 alone.

It computes, in float64 by default, what `latte forward` must compute: logits, lm_loss, aux_loss (balance losses of
every MoE layer plus the MTP loss) and loss = lm_loss + aux_loss, with autograd gradients for every parameter.
Parameters are a dict name -> tensor keyed by the SPEC (Hugging Face deepseek_v3) names; buffers
(`mlp.gate.e_score_correction_bias`) are a separate dict and never get a gradient.

Conventions the SPEC leaves to the implementation, fixed here and relied on by the fixtures:
- RoPE positions are 0..L-1 for a sequence of length L; dynamic NTK uses that L.
- Expert e belongs to group e // (n_routed_experts / n_group) (contiguous groups).
- MHA with num_key_value_heads < H: query head h reads key/value head h // (H / num_key_value_heads).
- MHA softmax scale is head_dim^-0.5 (SPEC §1 states the yarn mscale² correction for MLA only).
- MTP module m (0-based) runs its block over positions i = 0..T-m-2 (the ones with an input token t_{i+m+1});
  positions 0..T-m-3 have a target t_{i+m+2} and enter its mean cross-entropy. A MoE block inside an MTP module adds
  its balance losses to aux_loss like any other MoE layer.

Command line (mirrors `latte forward`, SPEC §8):
  python3 tools/reference/latte_ref.py CONFIG.toml --weights W.safetensors --tokens T.txt --out O.safetensors
      [--grads] [--dtype float64|float32]
"""

import argparse
import dataclasses
import math
import os
import sys
import tomllib

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # Debian's python3-torch lives in /usr/bin/python3's dist-packages.
    sys.exit(f"{sys.executable}: PyTorch is not importable; install python3-torch (tools/setup.sh --torch) "
             "and run this script with /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402


class ConfigError(ValueError):
    """A config that breaks SPEC §7; the message names the file and the key."""


# ----------------------------------------------------------------------------------------------------------------
# Configuration (SPEC §7): dataclasses with the SPEC defaults, filled from the [model...] tables of a TOML file.


@dataclasses.dataclass
class RopeConfig:
    theta: float = 10000.0
    type: str = "default"
    factor: float = 1.0
    original_max_position_embeddings: int = 2048
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0
    mscale_all_dim: float = 0.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0


@dataclasses.dataclass
class AttentionConfig:
    type: str = "mla"
    num_attention_heads: int = 8
    num_key_value_heads: int = 8
    head_dim: int = 64
    q_lora_rank: int = 64
    kv_lora_rank: int = 32
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 32
    v_head_dim: int = 64
    attention_bias: bool = False
    impl: str = "flash"
    rope_interleave: bool = True


MLA_ONLY_KEYS = {"q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"}
MHA_ONLY_KEYS = {"num_key_value_heads", "head_dim"}


@dataclasses.dataclass
class MoeConfig:
    n_routed_experts: int = 8
    num_experts_per_tok: int = 2
    n_shared_experts: int = 1
    moe_intermediate_size: int = 512
    scoring_func: str = "sigmoid"
    topk_method: str = "noaux_tc"
    n_group: int = 1
    topk_group: int = 1
    norm_topk_prob: bool = True
    routed_scaling_factor: float = 1.0
    first_k_dense_replace: int = 0
    moe_layer_freq: int = 1
    bias_update_speed: float = 0.001
    seq_aux_loss_alpha: float = 0.0
    aux_loss_alpha: float = 0.0
    router_noise_std: float = 0.0


@dataclasses.dataclass
class MtpConfig:
    num_layers: int = 0
    loss_weight: float = 0.3


@dataclasses.dataclass
class ModelConfig:
    vocab_size: int = 256
    hidden_size: int = 512
    num_hidden_layers: int = 6
    intermediate_size: int = 2048
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False
    attention: AttentionConfig = dataclasses.field(default_factory=AttentionConfig)
    rope: RopeConfig = dataclasses.field(default_factory=RopeConfig)
    moe: MoeConfig | None = None
    mtp: MtpConfig = dataclasses.field(default_factory=MtpConfig)

    def is_moe_layer(self, layer):
        """SPEC §3: MoE when layer >= first_k_dense_replace and layer % moe_layer_freq == 0."""
        return (self.moe is not None and layer >= self.moe.first_k_dense_replace
                and layer % self.moe.moe_layer_freq == 0)


def _fill(instance, table, where):
    fields = {f.name: f for f in dataclasses.fields(instance)}
    for key, value in table.items():
        if key not in fields or isinstance(value, dict):
            raise ConfigError(f"{where}: unknown key '{key}' (SPEC §7 keys: {', '.join(sorted(fields))})")
        default = getattr(instance, key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"{where}.{key}: expected {type(default).__name__}, got {value!r}")
        setattr(instance, key, value)


def config_from_dict(doc, where="config"):
    """Builds a ModelConfig from a parsed TOML document; only the [model] table is read."""
    if "model" not in doc:
        raise ConfigError(f"{where}: no [model] table")
    table = dict(doc["model"])
    cfg = ModelConfig()
    sub = {name: table.pop(name) for name in ("attention", "rope", "moe", "mtp") if name in table}
    _fill(cfg, table, f"{where}: [model]")
    attention = sub.get("attention", {})
    kind = attention.get("type", "mla")
    wrong = (MHA_ONLY_KEYS if kind == "mla" else MLA_ONLY_KEYS) & set(attention)
    if wrong:
        raise ConfigError(f"{where}: [model.attention] keys {sorted(wrong)} do not apply to type = \"{kind}\"")
    _fill(cfg.attention, attention, f"{where}: [model.attention]")
    _fill(cfg.rope, sub.get("rope", {}), f"{where}: [model.rope]")
    if "moe" in sub:
        cfg.moe = MoeConfig()
        _fill(cfg.moe, sub["moe"], f"{where}: [model.moe]")
    _fill(cfg.mtp, sub.get("mtp", {}), f"{where}: [model.mtp]")
    _validate(cfg, where)
    return cfg


def load_config(path):
    with open(path, "rb") as f:
        return config_from_dict(tomllib.load(f), path)


def _validate(cfg, where):
    a, r = cfg.attention, cfg.rope

    def need(cond, message):
        if not cond:
            raise ConfigError(f"{where}: {message}")

    need(a.type in ("mla", "mha"), f"attention.type must be mla or mha, got {a.type!r}")
    need(a.impl in ("flash", "naive"), f"attention.impl must be flash or naive, got {a.impl!r}")
    need(r.type in ("default", "linear", "dynamic", "yarn", "llama3"), f"rope.type {r.type!r} is not a SPEC §2 type")
    need(a.num_attention_heads > 0, f"num_attention_heads must be > 0, got {a.num_attention_heads}")
    if a.type == "mla":
        need(a.kv_lora_rank > 0, f"kv_lora_rank must be > 0, got {a.kv_lora_rank}")
        need(a.qk_rope_head_dim > 0 and a.qk_rope_head_dim % 2 == 0,
             f"qk_rope_head_dim must be even and > 0, got {a.qk_rope_head_dim}")
        need(a.qk_nope_head_dim >= 0 and a.v_head_dim > 0 and a.q_lora_rank >= 0,
             f"bad MLA dims nope={a.qk_nope_head_dim} v={a.v_head_dim} q_lora_rank={a.q_lora_rank}")
    else:
        need(a.head_dim > 0 and a.head_dim % 2 == 0, f"head_dim must be even and > 0, got {a.head_dim}")
        need(0 < a.num_key_value_heads <= a.num_attention_heads
             and a.num_attention_heads % a.num_key_value_heads == 0,
             f"num_key_value_heads {a.num_key_value_heads} must divide num_attention_heads {a.num_attention_heads}")
    m = cfg.moe
    if m is not None:
        need(m.scoring_func in ("sigmoid", "softmax"), f"moe.scoring_func {m.scoring_func!r}")
        need(m.topk_method in ("greedy", "group_limited_greedy", "noaux_tc"), f"moe.topk_method {m.topk_method!r}")
        need(m.n_group > 0 and m.n_routed_experts % m.n_group == 0,
             f"n_group {m.n_group} must divide n_routed_experts {m.n_routed_experts}")
        need(0 < m.topk_group <= m.n_group, f"topk_group {m.topk_group} must be in [1, n_group {m.n_group}]")
        need(0 < m.num_experts_per_tok <= m.n_routed_experts, f"num_experts_per_tok {m.num_experts_per_tok}")
        if m.topk_method == "noaux_tc":
            need(m.n_routed_experts // m.n_group >= 2, "noaux_tc needs at least 2 experts per group (top-2 sum)")
        need(m.moe_layer_freq > 0, f"moe_layer_freq must be > 0, got {m.moe_layer_freq}")


# ----------------------------------------------------------------------------------------------------------------
# Parameter names and shapes (SPEC §1, §3, §4).


def attention_shapes(cfg, prefix):
    a, d = cfg.attention, cfg.hidden_size
    H = a.num_attention_heads
    p = prefix + "self_attn."
    shapes = {}

    def linear(name, out_features, in_features, bias):
        shapes[f"{p}{name}.weight"] = (out_features, in_features)
        if bias:
            shapes[f"{p}{name}.bias"] = (out_features,)

    if a.type == "mla":
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        if a.q_lora_rank > 0:
            linear("q_a_proj", a.q_lora_rank, d, a.attention_bias)
            shapes[f"{p}q_a_layernorm.weight"] = (a.q_lora_rank,)
            linear("q_b_proj", H * qk, a.q_lora_rank, False)
        else:
            linear("q_proj", H * qk, d, a.attention_bias)
        linear("kv_a_proj_with_mqa", a.kv_lora_rank + a.qk_rope_head_dim, d, a.attention_bias)
        shapes[f"{p}kv_a_layernorm.weight"] = (a.kv_lora_rank,)
        linear("kv_b_proj", H * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, False)
        linear("o_proj", d, H * a.v_head_dim, a.attention_bias)
    else:
        linear("q_proj", H * a.head_dim, d, a.attention_bias)
        linear("k_proj", a.num_key_value_heads * a.head_dim, d, a.attention_bias)
        linear("v_proj", a.num_key_value_heads * a.head_dim, d, a.attention_bias)
        linear("o_proj", d, H * a.head_dim, a.attention_bias)
    return shapes


def _swiglu_shapes(prefix, d, width):
    return {f"{prefix}gate_proj.weight": (width, d), f"{prefix}up_proj.weight": (width, d),
            f"{prefix}down_proj.weight": (d, width)}


def block_shapes(cfg, layer):
    d = cfg.hidden_size
    prefix = f"model.layers.{layer}."
    shapes = {f"{prefix}input_layernorm.weight": (d,), f"{prefix}post_attention_layernorm.weight": (d,)}
    shapes.update(attention_shapes(cfg, prefix))
    if cfg.is_moe_layer(layer):
        m = cfg.moe
        shapes[f"{prefix}mlp.gate.weight"] = (m.n_routed_experts, d)
        for e in range(m.n_routed_experts):
            shapes.update(_swiglu_shapes(f"{prefix}mlp.experts.{e}.", d, m.moe_intermediate_size))
        if m.n_shared_experts > 0:
            shapes.update(_swiglu_shapes(f"{prefix}mlp.shared_experts.", d,
                                         m.n_shared_experts * m.moe_intermediate_size))
    else:
        shapes.update(_swiglu_shapes(f"{prefix}mlp.", d, cfg.intermediate_size))
    return shapes


def parameter_shapes(cfg):
    """name -> shape of every trainable parameter, in model order."""
    d, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    shapes = {"model.embed_tokens.weight": (V, d)}
    for layer in range(L):
        shapes.update(block_shapes(cfg, layer))
    shapes["model.norm.weight"] = (d,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (V, d)
    for m in range(cfg.mtp.num_layers):
        prefix = f"model.layers.{L + m}."
        shapes[f"{prefix}enorm.weight"] = (d,)
        shapes[f"{prefix}hnorm.weight"] = (d,)
        shapes[f"{prefix}eh_proj.weight"] = (d, 2 * d)
        shapes.update(block_shapes(cfg, L + m))
        shapes[f"{prefix}shared_head.norm.weight"] = (d,)
    return shapes


def buffer_shapes(cfg):
    """name -> shape of the non-trainable buffers: e_score_correction_bias of each noaux_tc MoE layer."""
    shapes = {}
    if cfg.moe is not None and cfg.moe.topk_method == "noaux_tc":
        for layer in range(cfg.num_hidden_layers + cfg.mtp.num_layers):
            if cfg.is_moe_layer(layer):
                shapes[f"model.layers.{layer}.mlp.gate.e_score_correction_bias"] = (cfg.moe.n_routed_experts,)
    return shapes


# ----------------------------------------------------------------------------------------------------------------
# RoPE (SPEC §2) and the yarn scale rules (SPEC §1).


def yarn_mscale(scale, m):
    """SPEC §1: mscale(s, m) = 1 if s <= 1 else 0.1·m·ln(s) + 1."""
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def rope_inv_freq(rope, dim, seq_len, max_position_embeddings):
    """Returns (inv_freq [dim/2] float64, attention_factor multiplying cos and sin)."""
    theta = rope.theta
    if rope.type == "dynamic" and seq_len > max_position_embeddings:
        theta = theta * (rope.factor * seq_len / max_position_embeddings - (rope.factor - 1)) ** (dim / (dim - 2))
    i = torch.arange(dim // 2, dtype=torch.float64)
    inv_freq = theta ** (-2.0 * i / dim)
    attention_factor = 1.0
    if rope.type == "linear":
        inv_freq = inv_freq / rope.factor
    elif rope.type == "yarn":
        L0 = rope.original_max_position_embeddings

        def corr(r):
            return dim * math.log(L0 / (2 * math.pi * r)) / (2 * math.log(rope.theta))

        low = max(math.floor(corr(rope.beta_fast)), 0)
        high = min(math.ceil(corr(rope.beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = ((i - low) / (high - low)).clamp(0.0, 1.0)
        inv_freq = (inv_freq / rope.factor) * ramp + inv_freq * (1 - ramp)
        if rope.mscale_all_dim > 0:
            attention_factor = yarn_mscale(rope.factor, rope.mscale) / yarn_mscale(rope.factor, rope.mscale_all_dim)
        else:
            attention_factor = yarn_mscale(rope.factor, 1.0)
    elif rope.type == "llama3":
        L0 = rope.original_max_position_embeddings
        wavelength = 2 * math.pi / inv_freq
        smooth = (L0 / wavelength - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
        blended = (1 - smooth) * inv_freq / rope.factor + smooth * inv_freq
        inv_freq = torch.where(wavelength > L0 / rope.low_freq_factor, inv_freq / rope.factor,
                               torch.where(wavelength < L0 / rope.high_freq_factor, inv_freq, blended))
    return inv_freq, attention_factor


def rope_tables(cfg, seq_len, dtype):
    """cos, sin [seq_len, dim/2] for positions 0..seq_len-1, already times the yarn attention factor."""
    dim = cfg.attention.qk_rope_head_dim if cfg.attention.type == "mla" else cfg.attention.head_dim
    inv_freq, attention_factor = rope_inv_freq(cfg.rope, dim, seq_len, cfg.max_position_embeddings)
    angles = torch.arange(seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return (torch.cos(angles) * attention_factor).to(dtype), (torch.sin(angles) * attention_factor).to(dtype)


def apply_rope(x, cos, sin, interleave):
    """x [B, T, H, dim]; cos/sin [T, dim/2]. Pairs (x_2i, x_2i+1) when interleave, else (x_i, x_{i+dim/2})."""
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    if interleave:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).flatten(-2)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


def softmax_scale(cfg):
    a, r = cfg.attention, cfg.rope
    if a.type == "mha":
        return a.head_dim ** -0.5
    scale = (a.qk_nope_head_dim + a.qk_rope_head_dim) ** -0.5
    if r.type == "yarn" and r.mscale_all_dim > 0:
        scale *= yarn_mscale(r.factor, r.mscale_all_dim) ** 2
    return scale


# ----------------------------------------------------------------------------------------------------------------
# Layers.


def rms_norm(x, weight, eps):
    return weight * x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps)


def linear(P, prefix, x):
    """x·Wᵀ (+ b when the parameter prefix.bias exists)."""
    y = x @ P[prefix + ".weight"].T
    bias = P.get(prefix + ".bias")
    return y if bias is None else y + bias


def causal_attention(q, k, v, scale):
    """q, k [B, T, H, dk], v [B, T, H, dv] -> (output [B, T, H, dv], probabilities [B, H, T, T])."""
    T = q.shape[1]
    scores = torch.einsum("bthd,bshd->bhts", q, k) * scale
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    return torch.einsum("bhts,bshd->bthd", probs, v), probs


def mla_query(P, p, x, cfg, cos, sin):
    """Per-head (q_nope [B,T,H,nope], rope(q_rope) [B,T,H,rope])."""
    a = cfg.attention
    B, T, _ = x.shape
    if a.q_lora_rank > 0:
        q = linear(P, p + "q_b_proj", rms_norm(linear(P, p + "q_a_proj", x), P[p + "q_a_layernorm.weight"],
                                               cfg.rms_norm_eps))
    else:
        q = linear(P, p + "q_proj", x)
    q = q.view(B, T, a.num_attention_heads, a.qk_nope_head_dim + a.qk_rope_head_dim)
    q_nope, q_rope = q.split([a.qk_nope_head_dim, a.qk_rope_head_dim], dim=-1)
    return q_nope, apply_rope(q_rope, cos, sin, a.rope_interleave)


def mla_latent(P, p, x, cfg, cos, sin):
    """The compressed cache: (kv_a_layernorm(c_kv) [B,T,r], rope(k_pe) [B,T,1,rope])."""
    a = cfg.attention
    c_kv, k_pe = linear(P, p + "kv_a_proj_with_mqa", x).split([a.kv_lora_rank, a.qk_rope_head_dim], dim=-1)
    c_kv = rms_norm(c_kv, P[p + "kv_a_layernorm.weight"], cfg.rms_norm_eps)
    return c_kv, apply_rope(k_pe[:, :, None, :], cos, sin, a.rope_interleave)


def mla(P, prefix, x, cfg, cos, sin, trace=None):
    """SPEC §1 full computation: keys and values expanded per head from the latent."""
    a = cfg.attention
    B, T, _ = x.shape
    H = a.num_attention_heads
    p = prefix + "self_attn."
    q_nope, q_rope = mla_query(P, p, x, cfg, cos, sin)
    c_kv, k_rope = mla_latent(P, p, x, cfg, cos, sin)
    kv = linear(P, p + "kv_b_proj", c_kv).view(B, T, H, a.qk_nope_head_dim + a.v_head_dim)
    k_nope, v = kv.split([a.qk_nope_head_dim, a.v_head_dim], dim=-1)
    q = torch.cat((q_nope, q_rope), dim=-1)
    k = torch.cat((k_nope, k_rope.expand(B, T, H, a.qk_rope_head_dim)), dim=-1)
    o, probs = causal_attention(q, k, v, softmax_scale(cfg))
    if trace is not None:
        trace.setdefault("attention_probs", []).append(probs.detach())
    return linear(P, p + "o_proj", o.reshape(B, T, H * a.v_head_dim))


def mla_absorbed(P, prefix, x, cfg, cos, sin):
    """SPEC §1 decoding form on the compressed cache: q_nope·W_UK against c_kv, o·W_UVᵀ per head, then o_proj."""
    a = cfg.attention
    B, T, _ = x.shape
    H, nope, vd = a.num_attention_heads, a.qk_nope_head_dim, a.v_head_dim
    p = prefix + "self_attn."
    q_nope, q_rope = mla_query(P, p, x, cfg, cos, sin)
    c_kv, k_rope = mla_latent(P, p, x, cfg, cos, sin)
    w = P[p + "kv_b_proj.weight"].view(H, nope + vd, a.kv_lora_rank)
    w_uk, w_uv = w[:, :nope, :], w[:, nope:, :]
    q_latent = torch.einsum("bthn,hnr->bthr", q_nope, w_uk)
    scores = (torch.einsum("bthr,bsr->bhts", q_latent, c_kv)
              + torch.einsum("bthd,bsd->bhts", q_rope, k_rope[:, :, 0, :])) * softmax_scale(cfg)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    probs = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    o_latent = torch.einsum("bhts,bsr->bthr", probs, c_kv)
    o = torch.einsum("bthr,hvr->bthv", o_latent, w_uv)
    return linear(P, p + "o_proj", o.reshape(B, T, H * vd))


def mha(P, prefix, x, cfg, cos, sin, trace=None):
    """SPEC §1 baseline: q/k/v/o projections, RoPE on the whole head, grouped key/value heads."""
    a = cfg.attention
    B, T, _ = x.shape
    H, Hkv, hd = a.num_attention_heads, a.num_key_value_heads, a.head_dim
    p = prefix + "self_attn."
    q = apply_rope(linear(P, p + "q_proj", x).view(B, T, H, hd), cos, sin, a.rope_interleave)
    k = apply_rope(linear(P, p + "k_proj", x).view(B, T, Hkv, hd), cos, sin, a.rope_interleave)
    v = linear(P, p + "v_proj", x).view(B, T, Hkv, hd)
    k, v = k.repeat_interleave(H // Hkv, dim=2), v.repeat_interleave(H // Hkv, dim=2)
    o, probs = causal_attention(q, k, v, softmax_scale(cfg))
    if trace is not None:
        trace.setdefault("attention_probs", []).append(probs.detach())
    return linear(P, p + "o_proj", o.reshape(B, T, H * hd))


def swiglu(P, prefix, x):
    """down_proj(silu(gate_proj(x)) * up_proj(x))"""
    hidden = F.silu(linear(P, prefix + "gate_proj", x)) * linear(P, prefix + "up_proj", x)
    return linear(P, prefix + "down_proj", hidden)


def route(scores, bias, m):
    """SPEC §3 expert selection on detached scores. Returns (chosen [N, K] indices, margin record).

    The margins are the distance of each decision from a tie: between the topk_group-th and next group score, and
    between the K-th and next selectable expert score. changed_by_groups counts the tokens whose experts differ from
    a plain top-k of s_sel."""
    s_sel = scores if bias is None else scores + bias
    N, E = s_sel.shape
    K = m.num_experts_per_tok
    record = {}
    if m.topk_method in ("group_limited_greedy", "noaux_tc"):
        ungrouped = s_sel.topk(K, dim=-1).indices.sort(-1).values
        grouped = s_sel.view(N, m.n_group, E // m.n_group)
        group_scores = grouped.max(-1).values if m.topk_method == "group_limited_greedy" \
            else grouped.topk(2, dim=-1).values.sum(-1)
        kept = group_scores.topk(m.topk_group, dim=-1).indices
        if m.topk_group < m.n_group:
            ordered = group_scores.sort(dim=-1, descending=True).values
            record["group_margin"] = (ordered[:, m.topk_group - 1] - ordered[:, m.topk_group]).min().item()
        group_mask = torch.zeros(N, m.n_group, dtype=torch.bool).scatter(1, kept, True)
        s_sel = s_sel.masked_fill(~group_mask.repeat_interleave(E // m.n_group, dim=1), float("-inf"))
    chosen = s_sel.topk(K, dim=-1).indices
    ordered = s_sel.sort(dim=-1, descending=True).values
    if K < E and torch.isfinite(ordered[:, K]).all():
        record["expert_margin"] = (ordered[:, K - 1] - ordered[:, K]).min().item()
    if m.topk_method in ("group_limited_greedy", "noaux_tc"):
        record["changed_by_groups"] = int((ungrouped != chosen.sort(-1).values).any(-1).sum())
    return chosen, record


def moe(P, buffers, prefix, x, cfg, trace=None):
    """SPEC §3 DeepSeekMoE in evaluation mode. Returns (output, balance loss of this layer)."""
    m = cfg.moe
    Bsz, T, d = x.shape
    N, E, K = Bsz * T, m.n_routed_experts, m.num_experts_per_tok
    p = prefix + "mlp."
    xf = x.reshape(N, d)
    logits = xf @ P[p + "gate.weight"].T
    scores = torch.sigmoid(logits) if m.scoring_func == "sigmoid" else torch.softmax(logits, dim=-1)
    bias = buffers.get(p + "gate.e_score_correction_bias") if m.topk_method == "noaux_tc" else None
    chosen, record = route(scores.detach(), None if bias is None else bias.to(scores.dtype), m)
    weights = scores.gather(1, chosen)
    if m.norm_topk_prob:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    weights = weights * m.routed_scaling_factor
    combine = torch.zeros(N, E, dtype=x.dtype).scatter(1, chosen, weights)
    y = torch.zeros_like(xf)
    for e in range(E):
        y = y + combine[:, e:e + 1] * swiglu(P, f"{p}experts.{e}.", xf)
    if m.n_shared_experts > 0:
        y = y + swiglu(P, p + "shared_experts.", xf)

    selected = torch.zeros(N, E, dtype=x.dtype).scatter(1, chosen, 1.0)
    normalized = scores / scores.sum(-1, keepdim=True)
    balance = torch.zeros((), dtype=x.dtype)
    if m.seq_aux_loss_alpha > 0:
        f = E / (K * T) * selected.view(Bsz, T, E).sum(1)
        P_seq = normalized.view(Bsz, T, E).mean(1)
        balance = balance + m.seq_aux_loss_alpha * (f * P_seq).sum(-1).mean()
    if m.aux_loss_alpha > 0:
        frac = selected.sum(0) / (N * K)
        balance = balance + m.aux_loss_alpha * E * (frac * normalized.mean(0)).sum()
    if trace is not None:
        record["layer"] = prefix
        record["load"] = selected.sum(0).tolist()
        if bias is not None:
            unbiased, _ = route(scores.detach(), None, m)
            record["changed_by_bias"] = int((unbiased.sort(-1).values != chosen.sort(-1).values).any(-1).sum())
        trace.setdefault("routing", []).append(record)
    return y.view(Bsz, T, d), balance


def decoder_block(P, buffers, layer, h, cfg, cos, sin, trace=None):
    """h + attn(input_layernorm(h)), then + mlp(post_attention_layernorm(h)); returns (h, balance loss)."""
    prefix = f"model.layers.{layer}."
    attention = mla if cfg.attention.type == "mla" else mha
    h = h + attention(P, prefix, rms_norm(h, P[prefix + "input_layernorm.weight"], cfg.rms_norm_eps), cfg, cos, sin,
                      trace)
    x = rms_norm(h, P[prefix + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
    if cfg.is_moe_layer(layer):
        y, balance = moe(P, buffers, prefix, x, cfg, trace)
    else:
        y, balance = swiglu(P, prefix + "mlp.", x), torch.zeros((), dtype=x.dtype)
    return h + y, balance


def forward(cfg, P, buffers, tokens, trace=None):
    """tokens: int64 [B, T]. Returns dict logits [B,T,V], lm_loss, aux_loss, loss (0-d tensors).
    P: name -> parameter; buffers: name -> e_score_correction_bias (a missing one counts as zero, SPEC §8)."""
    Bsz, T = tokens.shape
    L, V = cfg.num_hidden_layers, cfg.vocab_size
    dtype = P["model.embed_tokens.weight"].dtype
    embed = P["model.embed_tokens.weight"]
    head = embed if cfg.tie_word_embeddings else P["lm_head.weight"]
    cos, sin = rope_tables(cfg, T, dtype)
    h = embed[tokens]
    aux = torch.zeros((), dtype=dtype)
    for layer in range(L):
        h, balance = decoder_block(P, buffers, layer, h, cfg, cos, sin, trace)
        aux = aux + balance
    logits = rms_norm(h, P["model.norm.weight"], cfg.rms_norm_eps) @ head.T
    lm_loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))

    D = cfg.mtp.num_layers
    hidden = h  # the main model's last hidden state before model.norm
    for m in range(D):
        n = T - m - 1  # positions i = 0..n-1 have the input token t_{i+m+1}
        if n < 2:
            raise ValueError(f"MTP depth {D} needs sequences longer than {D + 1} tokens, got T = {T}")
        prefix = f"model.layers.{L + m}."
        e = rms_norm(embed[tokens[:, m + 1:m + 1 + n]], P[prefix + "enorm.weight"], cfg.rms_norm_eps)
        g = rms_norm(hidden[:, :n], P[prefix + "hnorm.weight"], cfg.rms_norm_eps)
        x = torch.cat((e, g), dim=-1) @ P[prefix + "eh_proj.weight"].T
        cos_m, sin_m = rope_tables(cfg, n, dtype)
        x, balance = decoder_block(P, buffers, L + m, x, cfg, cos_m, sin_m, trace)
        mtp_logits = rms_norm(x, P[prefix + "shared_head.norm.weight"], cfg.rms_norm_eps) @ head.T
        mtp_loss = F.cross_entropy(mtp_logits[:, :n - 1].reshape(-1, V), tokens[:, m + 2:].reshape(-1))
        aux = aux + balance + cfg.mtp.loss_weight / D * mtp_loss
        if trace is not None:
            trace.setdefault("mtp_loss", []).append(mtp_loss.item())
        hidden = x
    return {"logits": logits, "lm_loss": lm_loss, "aux_loss": aux, "loss": lm_loss + aux}


# ----------------------------------------------------------------------------------------------------------------
# File interface (SPEC §8).


def read_tokens(path):
    with open(path) as f:
        rows = [[int(t) for t in line.split()] for line in f if line.strip()]
    if not rows or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{path}: needs at least one line and all lines the same length, got lengths "
                         f"{[len(r) for r in rows]}")
    return torch.tensor(rows, dtype=torch.int64)


def load_weights(cfg, path, dtype):
    """Returns (parameters, buffers) as leaf tensors of dtype; missing, unexpected or misshapen names are an error."""
    tensors, _ = safetensors_io.read(path)
    shapes, buffer_names = parameter_shapes(cfg), buffer_shapes(cfg)
    missing = sorted(set(shapes) - set(tensors))
    unexpected = sorted(set(tensors) - set(shapes) - set(buffer_names))
    misshapen = sorted(f"{n} {list(tensors[n].shape)} != {list(s)}" for n, s in {**shapes, **buffer_names}.items()
                       if n in tensors and tuple(tensors[n].shape) != tuple(s))
    if missing or unexpected or misshapen:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}, misshapen {misshapen}")
    params = {n: torch.tensor(tensors[n], dtype=dtype, requires_grad=True) for n in shapes}
    buffers = {n: torch.tensor(tensors[n], dtype=dtype) for n in buffer_names if n in tensors}
    return params, buffers


def main(argv=None):
    parser = argparse.ArgumentParser(description="Reference `latte forward` (SPEC §8) in PyTorch.")
    parser.add_argument("config")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--grads", action="store_true", help="also write grad.<name> = d loss / d parameter")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args(argv)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    cfg = load_config(args.config)
    params, buffers = load_weights(cfg, args.weights, dtype)
    tokens = read_tokens(args.tokens)
    if int(tokens.max()) >= cfg.vocab_size or int(tokens.min()) < 0:
        raise ValueError(f"{args.tokens}: token ids must be in [0, {cfg.vocab_size}), got "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")
    out = forward(cfg, params, buffers, tokens)
    tensors = {k: v.detach().numpy() for k, v in out.items()}
    if args.grads:
        out["loss"].backward()
        tensors.update({f"grad.{n}": p.grad.numpy() for n, p in params.items()})
    code = "F64" if dtype == torch.float64 else "F32"
    safetensors_io.write(args.out, tensors, dtypes={k: code for k in tensors})


if __name__ == "__main__":
    main()
