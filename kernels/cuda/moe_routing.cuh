// DeepSeekMoE router on CUDA, the twin of kernels/cpu/moe_routing.h (same RouterSpec, same
// scoring, selection, tie-breaking and weights; see that header for the math). Router math is
// fp32 (callers upcast bf16 activations to fp32 logits).
// How it computes: one warp per token. Scores: lanes over the experts, softmax sums by a warp
// butterfly. Selection: the token's s_sel = s (+ correction bias for noaux_tc) sits in shared
// memory; group scores are computed one group per lane with the CPU's exact loop (max, or sum of
// the top two), the topk_group best groups are picked by topk_group rounds of a warp argmax
// (larger value first, lower index on ties), the other groups masked to -inf, then top_k rounds of
// the same argmax pick the experts in rank order. Weights are summed in rank order on one lane, so
// they match the CPU bit for bit. Backward kernels ADD into their outputs (callers zero them).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/moe_routing.h"

namespace latte::kernels::cuda {

// The largest n_experts select_experts takes (its per-token state lives in shared memory).
inline constexpr int64_t kMaxRouterExperts = 1024;

// scores[N,E] = sigmoid(logits) or softmax(logits) over each row of E.
void router_scores_forward(const float* logits, int64_t n_tokens, int64_t n_experts,
                           cpu::RouterScoring scoring, float* scores, cudaStream_t stream);

// dlogits[N,E] += d scores / d logits applied to dscores, from the forward's scores.
void router_scores_backward(const float* scores, const float* dscores, int64_t n_tokens,
                            int64_t n_experts, cpu::RouterScoring scoring, float* dlogits,
                            cudaStream_t stream);

// expert_ids[N,K] (descending s_sel, lower index first on ties) and weights[N,K]. The spec must
// pass cpu::check_router_spec; correction_bias[E] is read only for noaux_tc and may be nullptr.
// Throws latte::Error when n_experts exceeds kMaxRouterExperts.
void select_experts(const float* scores, const float* correction_bias, int64_t n_tokens,
                    const cpu::RouterSpec& spec, int32_t* expert_ids, float* weights,
                    cudaStream_t stream);

// dscores[N,E] += d weights / d scores applied to dweights[N,K] (see the CPU header).
void expert_weights_backward(const float* scores, const int32_t* expert_ids, const float* dweights,
                             int64_t n_tokens, const cpu::RouterSpec& spec, float* dscores,
                             cudaStream_t stream);

}  // namespace latte::kernels::cuda
