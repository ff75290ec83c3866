// MoE dispatch and combine: groups the N·K (token, expert) assignments by expert so that each
// expert runs one dense matmul over a contiguous block of rows, then weights and sums the expert
// outputs back per token. Forward and backward of both moves.
//
// How it computes: assignment a = token·K + k names expert_ids[a]. build_dispatch is a stable
// counting sort of the assignments by expert (a serial O(N·K + E) pass, so the order within an
// expert is token order, then k). With a capacity C, only the first C assignments of each expert
// in that order are kept; the rest are dropped and counted. The kept ones occupy sorted positions
// [0, expert_offsets[E]), expert e's block being [expert_offsets[e], expert_offsets[e+1]); the
// dropped ones follow, also grouped by expert, so sorted_assignment stays a permutation of all
// N·K assignments. assignment_position is the inverse map for kept ones and −1 for dropped ones.
// gather_rows runs in parallel over sorted rows; its backward and both combine passes run in
// parallel over tokens, each token reading its own K assignments in k order, so every write has
// one owner and results do not depend on the thread count.
// gather_rows_backward and both combine passes write every element of their outputs (zeros where
// no kept assignment contributes), so callers need not clear them.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

// Capacity value meaning "no capacity: drop nothing" (any negative capacity means the same).
inline constexpr int64_t kDroplessCapacity = -1;

// Per-expert capacity ceil(capacity_factor·N·K/E), or kDroplessCapacity when capacity_factor <= 0.
int64_t expert_capacity(int64_t n_tokens, int64_t top_k, int64_t n_experts, double capacity_factor);

// Stable counting sort of expert_ids[N·K] by expert, keeping at most `capacity` assignments per
// expert (a negative capacity keeps all). Writes expert_offsets[E+1], sorted_assignment[N·K]
// (sorted position -> assignment) and assignment_position[N·K] (assignment -> sorted position, −1
// when dropped). Returns the number of dropped assignments; per expert, the routed count minus
// expert_offsets[e+1] − expert_offsets[e]. Throws latte::Error when an id is outside [0, E).
int64_t build_dispatch(const int32_t* expert_ids, int64_t n_tokens, int64_t top_k,
                       int64_t n_experts, int64_t capacity, int64_t* expert_offsets,
                       int64_t* sorted_assignment, int64_t* assignment_position);

// x_sorted[p, :] = x[sorted_assignment[p] / K, :] for the n_kept = expert_offsets[E] kept rows.
template <typename T>
void gather_rows(const T* x, const int64_t* sorted_assignment, int64_t n_kept, int64_t top_k,
                 int64_t dim, T* x_sorted);

// dx[t, :] = Σ_k dx_sorted[assignment_position[t·K+k], :] over kept assignments.
template <typename T>
void gather_rows_backward(const T* dx_sorted, const int64_t* assignment_position, int64_t n_tokens,
                          int64_t top_k, int64_t dim, T* dx);

// y[t, :] = Σ_k weights[t·K+k] · expert_out_sorted[assignment_position[t·K+k], :] over kept
// assignments (a dropped assignment contributes nothing).
template <typename T>
void combine_forward(const T* expert_out_sorted, const T* weights,
                     const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                     int64_t dim, T* y);

// For each kept assignment a of token t at sorted position p:
//   d_expert_out_sorted[p, :] = weights[a] · dy[t, :]
//   dweights[a] = dy[t, :] · expert_out_sorted[p, :]
// and dweights[a] = 0 for a dropped assignment. Every kept row p belongs to one assignment, so
// all n_kept rows of d_expert_out_sorted are written.
template <typename T>
void combine_backward(const T* dy, const T* expert_out_sorted, const T* weights,
                      const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                      int64_t dim, T* d_expert_out_sorted, T* dweights);

}  // namespace latte::kernels::cpu
