#!/usr/bin/env python3
"""PyTorch scaled_dot_product_attention on the shapes `latte bench attention --device cuda` times,
for a side-by-side with latte's FlashAttention: bf16, causal, B=4, H=16, T in {1024, 4096, 8192},
head dims (64,64), (128,128), (192,128), forward and forward+backward, in TFLOP/s with the same
FLOP count (forward = 2*B*H*P*(d_qk + d_v) over the P = T(T+1)/2 causal (query, key) pairs;
forward + backward = 3.5 forwards). Prints one "BENCH name=sdpa_fwd ..." / "sdpa_fwd_bwd" line per shape;
exits 0 with a note when torch or a GPU is missing, so tools/gpu_check.sh can always run it.

    python3 tools/bench_sdpa.py
"""
import sys


def time_ms(torch, fn):
    """Mean milliseconds of fn on the current stream: a warm-up, then enough calls for ~0.2 s."""
    fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    stop.record()
    torch.cuda.synchronize()
    once = start.elapsed_time(stop)
    iters = int(min(20, max(1, 200.0 / max(once, 1e-3))))
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def main():
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("bench_sdpa: torch is not importable; no PyTorch baseline")
        return 0
    if not torch.cuda.is_available():
        print("bench_sdpa: torch sees no CUDA device; no PyTorch baseline")
        return 0
    print(f"bench_sdpa: torch {torch.__version__} on {torch.cuda.get_device_name()}")
    batch, heads = 4, 16
    print(f"{'d(qk,v)':<12} {'T':<6} {'fwd ms':>10} {'TF/s':>7} {'fwd+bwd ms':>12} {'TF/s':>7}")
    for d_qk, d_v in [(64, 64), (128, 128), (192, 128)]:
        for t in [1024, 4096, 8192]:
            flops = batch * heads * t * (t + 1) * (d_qk + d_v)
            tag = f"qk={d_qk} v={d_v} T={t}"
            try:
                q = torch.randn(batch, heads, t, d_qk, device="cuda", dtype=torch.bfloat16,
                                requires_grad=True)
                k = torch.randn_like(q, requires_grad=True)
                v = torch.randn(batch, heads, t, d_v, device="cuda", dtype=torch.bfloat16,
                                requires_grad=True)
                d_o = torch.randn(batch, heads, t, d_v, device="cuda", dtype=torch.bfloat16)

                def forward():
                    with torch.no_grad():
                        F.scaled_dot_product_attention(q, k, v, is_causal=True)

                def forward_backward():
                    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
                    torch.autograd.grad(out, (q, k, v), d_o)

                fwd = time_ms(torch, forward)
                both = time_ms(torch, forward_backward)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as e:  # e.g. no kernel for a shape
                message = str(e).splitlines()[0][:120]
                print(f"({d_qk:3},{d_v:3})    {t:<6} failed: {message}")
                print(f"BENCH name=sdpa_fwd {tag} error=1")
                torch.cuda.empty_cache()
                continue
            tf_fwd, tf_both = flops / fwd / 1e9, 3.5 * flops / both / 1e9
            print(f"({d_qk:3},{d_v:3})    {t:<6} {fwd:10.3f} {tf_fwd:7.1f} {both:12.3f} "
                  f"{tf_both:7.1f}")
            print(f"BENCH name=sdpa_fwd {tag} ms={fwd:.4f} tflops={tf_fwd:.2f}")
            print(f"BENCH name=sdpa_fwd_bwd {tag} ms={both:.4f} tflops={tf_both:.2f}")
            del q, k, v, d_o
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
