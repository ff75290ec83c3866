#!/usr/bin/env python3
"""The latte model as a fast eager PyTorch training model, the PyTorch side of tools/bench_vs_torch.py.

It computes what latte_ref.forward computes (SPEC §1-§4) and reuses latte_ref's configuration, parameter names,
attention (MLA and MHA), RoPE, RMSNorm and SwiGLU code. Two parts are rewritten, for speed only:
- The routed experts run on their own tokens only: per expert, gather the tokens that chose it, run the SwiGLU MLP and
  index-add the weighted output back, as Hugging Face's DeepSeek-V3 MoE does. latte_ref, written for clarity, runs
  every expert on every token and multiplies the unchosen ones by zero, which costs n_routed_experts /
  num_experts_per_tok times the routed-expert work.
- Routing keeps no diagnostics (latte_ref records tie margins and group-limit effects for the fixtures).
Everything runs batched over tokens; the only Python loops are over layers and experts.

For training, forward() takes a generator for the router noise (router_noise_std > 0) and also returns, per noaux_tc
MoE layer, the tokens routed to each expert; update_correction_bias() applies SPEC §3's aux-loss-free bias step with
them, so a training step does what latte's does.

    python3 tools/reference/torch_train_model.py CONFIG.toml [--seed N]

checks, in float64 on random weights and tokens, that loss, lm_loss, aux_loss and every gradient equal latte_ref's
(relative 1e-10; exit 1 otherwise). CONFIG is a resolved config (`latte config show` prints one).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import latte_ref as ref  # noqa: E402  (exits with a message when torch is missing)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def route(scores, bias, m):
    """SPEC §3 expert selection on detached scores [N, E]; returns the chosen experts [N, K]."""
    s_sel = scores if bias is None else scores + bias
    N, E = s_sel.shape
    if m.topk_method in ("group_limited_greedy", "noaux_tc"):
        grouped = s_sel.view(N, m.n_group, E // m.n_group)
        group_scores = grouped.max(-1).values if m.topk_method == "group_limited_greedy" \
            else grouped.topk(2, dim=-1).values.sum(-1)
        kept = group_scores.topk(m.topk_group, dim=-1).indices
        group_mask = torch.zeros(N, m.n_group, dtype=torch.bool).scatter_(1, kept, True)
        s_sel = s_sel.masked_fill(~group_mask[:, :, None].expand_as(grouped).reshape(N, E), float("-inf"))
    return s_sel.topk(m.num_experts_per_tok, dim=-1).indices


def moe(P, buffers, prefix, x, cfg, loads, noise):
    """SPEC §3 DeepSeekMoE, dropless. Returns (output, balance loss); records the expert loads in `loads`.
    noise: a torch.Generator for the training-time router noise (router_noise_std > 0), or None."""
    m = cfg.moe
    Bsz, T, d = x.shape
    N, E, K = Bsz * T, m.n_routed_experts, m.num_experts_per_tok
    p = prefix + "mlp."
    xf = x.reshape(N, d)
    logits = xf @ P[p + "gate.weight"].T
    if noise is not None and m.router_noise_std > 0:
        logits = logits + torch.randn(logits.shape, generator=noise, dtype=logits.dtype) * m.router_noise_std
    scores = torch.sigmoid(logits) if m.scoring_func == "sigmoid" else torch.softmax(logits, dim=-1)
    bias_name = p + "gate.e_score_correction_bias"
    bias = buffers.get(bias_name) if m.topk_method == "noaux_tc" else None
    chosen = route(scores.detach(), bias, m)
    weights = scores.gather(1, chosen)
    if m.norm_topk_prob:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    weights = weights * m.routed_scaling_factor

    y = ref.swiglu(P, p + "shared_experts.", xf) if m.n_shared_experts > 0 else torch.zeros_like(xf)
    expert_of = chosen.reshape(-1)  # assignment a = token a // K, slot a % K
    order = expert_of.argsort(stable=True)
    counts = torch.bincount(expert_of, minlength=E)
    flat_weights = weights.reshape(-1)
    start = 0
    for e, count in enumerate(counts.tolist()):
        if count == 0:
            continue
        assignments = order[start:start + count]
        start += count
        tokens = assignments // K
        out = ref.swiglu(P, f"{p}experts.{e}.", xf[tokens]) * flat_weights[assignments, None]
        y = y.index_add(0, tokens, out)
    if m.topk_method == "noaux_tc":
        loads[bias_name] = counts

    balance = torch.zeros((), dtype=x.dtype)
    if m.seq_aux_loss_alpha > 0 or m.aux_loss_alpha > 0:
        selected = torch.zeros(N, E, dtype=x.dtype).scatter_(1, chosen, 1.0)
        normalized = scores / scores.sum(-1, keepdim=True)
        if m.seq_aux_loss_alpha > 0:
            f = E / (K * T) * selected.view(Bsz, T, E).sum(1)
            P_seq = normalized.view(Bsz, T, E).mean(1)
            balance = balance + m.seq_aux_loss_alpha * (f * P_seq).sum(-1).mean()
        if m.aux_loss_alpha > 0:
            frac = counts.to(x.dtype) / (N * K)
            balance = balance + m.aux_loss_alpha * E * (frac * normalized.mean(0)).sum()
    return y.view(Bsz, T, d), balance


def decoder_block(P, buffers, layer, h, cfg, cos, sin, loads, noise):
    prefix = f"model.layers.{layer}."
    attention = ref.mla if cfg.attention.type == "mla" else ref.mha
    h = h + attention(P, prefix, ref.rms_norm(h, P[prefix + "input_layernorm.weight"], cfg.rms_norm_eps), cfg, cos,
                      sin)
    x = ref.rms_norm(h, P[prefix + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
    if cfg.is_moe_layer(layer):
        y, balance = moe(P, buffers, prefix, x, cfg, loads, noise)
    else:
        y, balance = ref.swiglu(P, prefix + "mlp.", x), torch.zeros((), dtype=x.dtype)
    return h + y, balance


def forward(cfg, P, buffers, tokens, noise=None):
    """latte_ref.forward's outputs (logits, lm_loss, aux_loss, loss) plus `loads`: bias name -> tokens per expert.
    noise: None (evaluation mode, as latte_ref) or a torch.Generator: training mode, router noise when enabled."""
    Bsz, T = tokens.shape
    L, V = cfg.num_hidden_layers, cfg.vocab_size
    dtype = P["model.embed_tokens.weight"].dtype
    embed = P["model.embed_tokens.weight"]
    head = embed if cfg.tie_word_embeddings else P["lm_head.weight"]
    loads = {}
    cos, sin = ref.rope_tables(cfg, T, dtype)
    h = embed[tokens]
    aux = torch.zeros((), dtype=dtype)
    for layer in range(L):
        h, balance = decoder_block(P, buffers, layer, h, cfg, cos, sin, loads, noise)
        aux = aux + balance
    logits = ref.rms_norm(h, P["model.norm.weight"], cfg.rms_norm_eps) @ head.T
    lm_loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))

    D = cfg.mtp.num_layers
    hidden = h
    for m in range(D):
        n = T - m - 1
        if n < 2:
            raise ValueError(f"MTP depth {D} needs sequences longer than {D + 1} tokens, got T = {T}")
        prefix = f"model.layers.{L + m}."
        e = ref.rms_norm(embed[tokens[:, m + 1:m + 1 + n]], P[prefix + "enorm.weight"], cfg.rms_norm_eps)
        g = ref.rms_norm(hidden[:, :n], P[prefix + "hnorm.weight"], cfg.rms_norm_eps)
        x = torch.cat((e, g), dim=-1) @ P[prefix + "eh_proj.weight"].T
        cos_m, sin_m = ref.rope_tables(cfg, n, dtype)
        x, balance = decoder_block(P, buffers, L + m, x, cfg, cos_m, sin_m, loads, noise)
        mtp_logits = ref.rms_norm(x, P[prefix + "shared_head.norm.weight"], cfg.rms_norm_eps) @ head.T
        mtp_loss = F.cross_entropy(mtp_logits[:, :n - 1].reshape(-1, V), tokens[:, m + 2:].reshape(-1))
        aux = aux + balance + cfg.mtp.loss_weight / D * mtp_loss
        hidden = x
    return {"logits": logits, "lm_loss": lm_loss, "aux_loss": aux, "loss": lm_loss + aux, "loads": loads}


def init_parameters(cfg, dtype, seed):
    """Random parameters (matrices N(0, initializer_range), norm weights 1, biases 0) and zero correction biases."""
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in ref.parameter_shapes(cfg).items():
        if len(shape) >= 2:
            value = torch.randn(shape, generator=gen, dtype=torch.float64) * cfg.initializer_range
        elif name.endswith(".bias"):
            value = torch.zeros(shape, dtype=torch.float64)
        else:
            value = torch.ones(shape, dtype=torch.float64)
        params[name] = value.to(dtype).requires_grad_(True)
    buffers = {name: torch.zeros(shape, dtype=dtype) for name, shape in ref.buffer_shapes(cfg).items()}
    return params, buffers


@torch.no_grad()
def update_correction_bias(buffers, loads, speed):
    """SPEC §3 aux-loss-free balancing: b_i += speed·sign(mean(load) − load_i), after the optimizer step."""
    for name, load in loads.items():
        load = load.to(buffers[name].dtype)
        buffers[name] += speed * torch.sign(load.mean() - load)


def check_against_reference(cfg, seed, batch=4, seq_len=32):
    """Largest relative difference, over loss, lm_loss, aux_loss and every gradient, between forward() and
    latte_ref.forward in float64 on random parameters, correction biases and tokens. (An expert no token chose has no
    gradient here and a zero one in latte_ref.)"""
    params, buffers = init_parameters(cfg, torch.float64, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for b in buffers.values():
        b.copy_(torch.rand(b.shape, generator=gen, dtype=torch.float64) * 0.1)
    tokens = torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), generator=gen)
    results = []
    for fn in (ref.forward, forward):
        for p in params.values():
            p.grad = None
        out = fn(cfg, params, buffers, tokens)
        out["loss"].backward()
        results.append(({k: out[k].detach().clone() for k in ("loss", "lm_loss", "aux_loss")},
                        {n: torch.zeros_like(p) if p.grad is None else p.grad.clone() for n, p in params.items()}))
    (want, want_grads), (got, got_grads) = results
    worst = 0.0
    for a, b in [(want[k], got[k]) for k in want] + [(want_grads[n], got_grads[n]) for n in want_grads]:
        worst = max(worst, float((a - b).abs().max() / a.abs().max().clamp_min(1e-300)))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check this fast model against latte_ref.py in float64.")
    parser.add_argument("config", help="resolved config TOML (only [model] is read)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = ref.load_config(args.config)
    worst = check_against_reference(cfg, args.seed)
    # Both evaluate the same float64 formulas; only the order of the expert sums differs, so agreement is ~1e-15.
    ok = worst <= 1e-10
    print(f"largest relative difference to latte_ref.py (loss, lm_loss, aux_loss, gradients): {worst:.2e} "
          f"({'ok' if ok else 'FAILED'}, bound 1e-10)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
