// DeepSeekMoE load balancing (SPEC §3): the sequence-wise balance loss and the batch-level
// (Switch) loss with their gradients w.r.t. the router scores, the aux-loss-free update of the
// expert correction bias, and load statistics (tokens per expert, max/mean, coefficient of
// variation).
//
// How it computes. With p_{i,t} = s_{i,t}/Z_t, Z_t = Σ_j s_{j,t} (the scores normalized per token)
// and c_i the number of top-k slots of a token block that chose expert i, both losses are
//   L = Σ_t Σ_i C_i p_{i,t},   C_i = α·E·c_i/(B·K·T²) for the block (sequence) holding t,
// the sequence-wise loss over B sequences of T tokens each, the Switch loss being the case B = 1,
// T = N (α·E·Σ_i c_i/(N·K)·mean_t p_{i,t}). The counts are constants (the selection is piecewise
// constant), so dL/ds_{i,t} = C_i/Z_t − Σ_m C_m s_{m,t}/Z_t². Counts are a serial pass; the
// per-token terms run in parallel over tokens into their own slots and the scalar is then summed
// serially in token order in double, so the value does not depend on the thread count.
// Backward kernels add into dscores (callers zero-fill it first), so they compose with
// expert_weights_backward (kernels/cpu/moe_routing.h) in one buffer.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

// Sequence-wise loss: scores[B·T, E] (the unbiased router scores, rows in sequence order) and
// expert_ids[B·T, K]; per sequence f_i = E/(K·T)·Σ_t 1[i ∈ topk_t], P_i = (1/T)·Σ_t p_{i,t},
// L_b = α·Σ_i f_i·P_i; returns the mean of L_b over the B sequences.
template <typename T>
T seq_aux_loss_forward(const T* scores, const int32_t* expert_ids, int64_t n_seqs, int64_t seq_len,
                       int64_t n_experts, int64_t top_k, T alpha);

// dscores[B·T, E] += dloss · d(seq_aux_loss)/d scores, counts held constant.
template <typename T>
void seq_aux_loss_backward(const T* scores, const int32_t* expert_ids, int64_t n_seqs,
                           int64_t seq_len, int64_t n_experts, int64_t top_k, T alpha, T dloss,
                           T* dscores);

// Batch-level (Switch) loss over N tokens: α·E·Σ_i frac_i·mean_prob_i with
// frac_i = (assignments to i)/(N·K) and mean_prob_i = (1/N)·Σ_t p_{i,t}.
template <typename T>
T switch_aux_loss_forward(const T* scores, const int32_t* expert_ids, int64_t n_tokens,
                          int64_t n_experts, int64_t top_k, T alpha);

// dscores[N, E] += dloss · d(switch_aux_loss)/d scores, counts held constant.
template <typename T>
void switch_aux_loss_backward(const T* scores, const int32_t* expert_ids, int64_t n_tokens,
                              int64_t n_experts, int64_t top_k, T alpha, T dloss, T* dscores);

// load[E] += the number of the n_assignments expert_ids routed to each expert (callers zero-fill
// load first, or keep adding over micro-batches and data-parallel ranks for the global batch).
// Throws latte::Error when an id is outside [0, E).
void count_expert_load(const int32_t* expert_ids, int64_t n_assignments, int64_t n_experts,
                       int64_t* load);

// Summary of a load vector. With no tokens at all the ratios are 0.
struct LoadStatistics {
  int64_t total = 0;                    // Σ_i load_i (= N·K when every slot is counted)
  int64_t min = 0;                      // min_i load_i
  int64_t max = 0;                      // max_i load_i
  double mean = 0;                      // total / E
  double max_over_mean = 0;             // max / mean; 1 is perfect balance
  double coefficient_of_variation = 0;  // population std / mean; 0 is perfect balance
};

LoadStatistics load_statistics(const int64_t* load, int64_t n_experts);

// Aux-loss-free balancing: bias[i] += gamma·sign(mean(load) − load[i]), sign(0) = 0. The sign is
// decided exactly in integers (sign(Σ_j load_j − E·load_i)), so equal loads never move the bias.
template <typename T>
void update_correction_bias(T* bias, const int64_t* load, int64_t n_experts, T gamma);

}  // namespace latte::kernels::cpu
