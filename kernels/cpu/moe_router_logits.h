// The DeepSeekMoE router's logits, the one product of the router (SPEC §3): logits = x · wᵀ for
// token rows x [N, d] and the router weight w [E, d], and its backward. The router runs in the
// weight's precision (fp32 under bf16 activations: top-k choices are sensitive to rounding), so
// the rows may be narrower than the weight: X = float or double rows, W = float or double weight,
// W at least as wide as X; every sum accumulates in W.
//
// How it computes: a dot product of length d per (token, expert), tokens in parallel (OpenMP);
// the weight gradient sums over tokens in token order for each (expert, column), columns in
// parallel. Every sum has one owner and a fixed order: results do not depend on the thread count.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

// logits[n, e] = Σ_j x[n, j] · w[e, j].
template <typename X, typename W>
void router_logits_forward(const X* x, const W* w, int64_t n_tokens, int64_t dim, int64_t n_experts,
                           W* logits);

// dx[n, j] = Σ_e dlogits[n, e] · w[e, j] (rounded to X), dw[e, j] = Σ_n dlogits[n, e] · x[n, j];
// both written (not added to). dx or dw may be nullptr when not needed.
template <typename X, typename W>
void router_logits_backward(const W* dlogits, const X* x, const W* w, int64_t n_tokens, int64_t dim,
                            int64_t n_experts, X* dx, W* dw);

}  // namespace latte::kernels::cpu
