// Reference attention that materializes the [q_len, kv_len] probability matrix of every
// (batch, query head): scores = scale * q k^T by one BLAS GEMM on the strided operands, causal
// mask, row softmax in the element type, o = probs v by a second GEMM. The probabilities are kept
// for the backward pass, which is four GEMMs per head plus the softmax Jacobian. Memory O(q_len *
// kv_len); the oracle the flash kernels are tested against.
#pragma once

#include "kernels/cpu/attention.h"

namespace latte::kernels::cpu {

// o = softmax(scale * q k^T + mask) v. probs: [batch, q_heads, q_len, kv_len] contiguous, written
// here and read by the backward pass (masked entries are 0).
template <typename T>
void naive_attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* o,
                             T* probs);

// Gradients of the forward pass for upstream d_o. OVERWRITES the dq/dk/dv elements addressed by
// the q/k/v layouts (other elements of those buffers are untouched).
template <typename T>
void naive_attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                              const T* probs, const T* d_o, T* dq, T* dk, T* dv);

}  // namespace latte::kernels::cpu
