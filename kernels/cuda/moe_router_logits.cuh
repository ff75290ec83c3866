// The DeepSeekMoE router's logits on CUDA, the twin of kernels/cpu/moe_router_logits.h: logits =
// x · wᵀ for bf16 or fp32 token rows x [N, d] and the fp32 router weight w [E, d], and its
// backward, all in fp32 arithmetic (the rows are read as they are: no fp32 copy of them), for
// weights that fit shared memory (router_logits_fused).
//
// How it computes. The weight is small next to the rows (a few experts by about a thousand
// columns), so every block stages all of it in shared memory once and then streams its rows: the
// rows are read once, the weight once per block.
// - forward: a warp per row; each lane multiplies its 16-byte groups of the row (8 bf16 or 4
//   floats; single elements when the rows are not 16-byte aligned) into per-expert sums, a
//   butterfly adds the lanes' sums and lane e writes logits[n, e];
// - dx: a warp per row; each lane forms its groups of dx from the row's E dlogits and the weight;
// - dw: each block of 128 rows sums dlogits[n, e] · x[n, j] over its rows, in row order, into a
//   workspace (a thread per column); a second kernel adds the blocks' sums in block order.
// Every sum has a fixed order: results are identical run to run.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace latte::kernels::cuda {

// The most experts and weight bytes the fused kernels take.
inline constexpr int64_t kMaxFusedRouterExperts = 32;
inline constexpr int64_t kMaxFusedRouterWeightBytes = 96 * 1024;
bool router_logits_fused(int64_t dim, int64_t n_experts);

// logits[n, e] = sum_j x[n, j] w[e, j]; X = float or latte::bf16; router_logits_fused must hold.
template <typename X>
void router_logits_forward(const X* x, const float* w, int64_t n_tokens, int64_t dim,
                           int64_t n_experts, float* logits, cudaStream_t stream);

// Floats of the workspace router_logits_backward needs for the weight gradient.
int64_t router_logits_backward_workspace(int64_t n_tokens, int64_t dim, int64_t n_experts);

// dx = dlogits w (rounded to X), dw = dlogitsᵀ x, both written; dx or dw may be nullptr when not
// needed. router_logits_fused must hold.
template <typename X>
void router_logits_backward(const float* dlogits, const X* x, const float* w, int64_t n_tokens,
                            int64_t dim, int64_t n_experts, X* dx, float* dw, float* workspace,
                            cudaStream_t stream);

}  // namespace latte::kernels::cuda
