// Materializing attention on CUDA, the twin of kernels/cpu/attention_naive.h (same
// AttentionProblem: sizes, GQA, causal rule, strided q/k/v/o layouts) and the baseline the flash
// kernels (flash_attention.cuh) are measured against: it holds the [q_len, kv_len] probabilities
// of every (batch, query head) in memory, as the textbook formulation does.
//
// How it computes. Forward: scores = q k^T by cuBLAS GEMMs on the strided operands into the
// probability buffer, the scaled causally-masked row softmax in place
// (kernels/cuda/attention_softmax.cuh), o = probs v by GEMMs. Backward, per query head:
// dv += probs^T d_o, d_probs = d_o v^T, d_scores = probs * (d_probs - rowsum(probs * d_probs)),
// dq = scale d_scores k, dk += scale d_scores^T q. The GEMMs loop over (batch, position of the
// query head in its GQA group) and are strided-batched over the kv heads, so query head
// h = g * group + j of kv head g is one batch entry; dk and dv are summed over the group's query
// heads by accumulating GEMMs in j order (deterministic, no atomics). T = float (fp32 GEMMs, no
// TF32) or bf16 (bf16 scores and probabilities, fp32 accumulation and softmax math).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/bf16.h"
#include "kernels/cuda/gemm.cuh"

namespace latte::kernels::cuda {

// o = softmax(scale * q k^T + mask) v. probs: [batch, q_heads, q_len, kv_len] contiguous, written
// here and read by the backward pass (masked entries are 0).
template <typename T>
void naive_attention_forward(const BlasHandles& h, const cpu::AttentionProblem& p, const T* q,
                             const T* k, const T* v, T* o, T* probs, cudaStream_t stream);

// Elements of the T workspace naive_attention_backward needs (d_probs of one query head per kv
// head: kv_heads * q_len * kv_len).
int64_t naive_attention_backward_workspace(const cpu::AttentionProblem& p);

// Gradients of the forward pass for upstream d_o (laid out like o). OVERWRITES the dq/dk/dv
// elements addressed by the q/k/v layouts (other elements of those buffers are untouched).
template <typename T>
void naive_attention_backward(const BlasHandles& h, const cpu::AttentionProblem& p, const T* q,
                              const T* k, const T* v, const T* probs, const T* d_o, T* dq, T* dk,
                              T* dv, T* workspace, cudaStream_t stream);

}  // namespace latte::kernels::cuda
