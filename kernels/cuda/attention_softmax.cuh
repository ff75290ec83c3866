// The row softmax of materialized attention scores on CUDA (the softmax step of
// kernels/cuda/naive_attention.cuh). Scores come in `matrices` [q_len, kv_len] row-major blocks,
// block m at m * matrix_stride elements; row i is query i of an AttentionProblem, whose scale and
// causal rule (AttentionProblem::visible_keys) apply:
// - forward, in place: probs[i, j] = softmax_j(scale * scores[i, j]) over the keys row i sees,
//   0 for the masked keys (a row that sees no key is all 0);
// - backward: d_scores = probs * (d_probs - rowsum(probs * d_probs)), the softmax Jacobian for
//   the unscaled product (the scale is applied by the caller's GEMMs), written over d_probs.
//   Masked entries of probs are 0, so their d_scores are 0.
// How it computes: one block per row; the row max and sum (forward) or the dot product
// (backward) are fp32 block reductions in a fixed tree, so results are reproducible run to run.
// T = float or bf16, math in fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename T>
void attention_softmax_forward(const cpu::AttentionProblem& p, T* scores, int64_t matrices,
                               int64_t matrix_stride, cudaStream_t stream);

// probs and d_probs hold `matrices` blocks each, matrix_stride and grad_matrix_stride apart.
template <typename T>
void attention_softmax_backward(const cpu::AttentionProblem& p, const T* probs, T* d_probs,
                                int64_t matrices, int64_t matrix_stride, int64_t grad_matrix_stride,
                                cudaStream_t stream);

}  // namespace latte::kernels::cuda
