// DeepSeekMoE load balancing on CUDA, the twin of kernels/cpu/moe_balance.h: the sequence-wise
// and batch-level (Switch) balance losses with their gradients w.r.t. the router scores and the
// aux-loss-free correction-bias update (see the CPU header for the math: L = sum_t sum_i C_i
// p_{i,t}, C_i = alpha E c_i / (B K T^2), p = s / sum(s) per token; expert loads come from
// build_dispatch). How it computes: the per-(sequence, expert) counts c are integer atomics into a
// shared-memory histogram per block of slots, then one global atomic per (block, expert) (exact,
// so order-independent); one warp per token computes its term in double (lanes over experts, a warp
// butterfly), and the loss is the sum of the per-token terms by one block in a fixed tree, so it
// is the same on every run. The backward is one warp per token adding into dscores. The loss and
// the upstream gradient stay on the device (no host sync).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace latte::kernels::cuda {

// Bytes of device workspace the balance losses need for n_seqs sequences of seq_len tokens.
int64_t balance_loss_workspace_bytes(int64_t n_seqs, int64_t seq_len, int64_t n_experts);

// *loss (device) = the sequence-wise balance loss (mean over sequences, as on the CPU) of
// scores[B*T, E] and expert_ids[B*T, K].
void seq_aux_loss_forward(const float* scores, const int32_t* expert_ids, int64_t n_seqs,
                          int64_t seq_len, int64_t n_experts, int64_t top_k, float alpha,
                          float* loss, void* workspace, cudaStream_t stream);

// dscores[B*T, E] += (*dloss) * d(seq_aux_loss)/d scores, counts held constant; dloss is one
// value on the device.
void seq_aux_loss_backward(const float* scores, const int32_t* expert_ids, int64_t n_seqs,
                           int64_t seq_len, int64_t n_experts, int64_t top_k, float alpha,
                           const float* dloss, float* dscores, void* workspace,
                           cudaStream_t stream);

// The Switch loss over N tokens: the sequence-wise loss with one sequence of N tokens.
void switch_aux_loss_forward(const float* scores, const int32_t* expert_ids, int64_t n_tokens,
                             int64_t n_experts, int64_t top_k, float alpha, float* loss,
                             void* workspace, cudaStream_t stream);
void switch_aux_loss_backward(const float* scores, const int32_t* expert_ids, int64_t n_tokens,
                              int64_t n_experts, int64_t top_k, float alpha, const float* dloss,
                              float* dscores, void* workspace, cudaStream_t stream);

// bias[i] += gamma * sign(mean(load) - load[i]), the sign decided exactly in integers.
void update_correction_bias(float* bias, const int64_t* load, int64_t n_experts, float gamma,
                            cudaStream_t stream);

}  // namespace latte::kernels::cuda
