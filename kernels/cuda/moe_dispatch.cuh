// MoE dispatch and combine on CUDA, the twin of kernels/cpu/moe_dispatch.h: a stable counting
// sort of the N*K (token, expert) assignments by expert with an optional per-expert capacity,
// the gather of token rows into expert order, and the weighted combine back, with backward passes.
// The output arrays mean exactly what the CPU's do (same order, same dropped block layout).
//
// How it computes. build_dispatch: (1) one block per chunk of 256 assignments counts its experts
// in shared memory; (2) one block turns the chunk counts into each chunk's starting rank per
// expert (a warp per expert, a shuffle scan over 32 chunks at a time) and each expert's load, then
// the expert offsets (kept) and the dropped blocks, serially over experts; (3) one warp
// per chunk walks its assignments in rounds of 32 in order, ranking equal experts within a round
// with __match_any_sync and a running count per expert, so an assignment's rank is the number of
// earlier assignments with its expert: the stable order of the CPU. Nothing depends on timing, so
// the permutation is identical run to run. Rows are then moved one block per row (gather) or per
// token (combine and its backward, gather backward: each token reads its own K assignments in k
// order, so every write has one owner), 16 bytes per access when the row size and the bases
// allow (these are bandwidth-bound; combine_backward's blocks have one thread per access up to
// 256); dot products for the weight gradients reduce in a fixed tree. gather_rows_backward and both
// combine passes write every element of their outputs (zeros where no kept assignment
// contributes), so callers need not clear them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"
#include "kernels/cpu/moe_dispatch.h"

namespace latte::kernels::cuda {

// The largest n_experts build_dispatch takes (its per-chunk counts live in shared memory).
inline constexpr int64_t kMaxDispatchExperts = 4096;

// Bytes of device workspace build_dispatch needs.
int64_t build_dispatch_workspace_bytes(int64_t n_assignments, int64_t n_experts);

// Stable counting sort of expert_ids[N*K] by expert keeping at most `capacity` assignments per
// expert (negative: all). Writes, on the device, expert_offsets[E+1], sorted_assignment[N*K],
// assignment_position[N*K] as the CPU does, load[E] = the assignments routed to each expert
// before the capacity cut (the CPU's count_expert_load), status[0] = the number of dropped
// assignments, status[1] = the number of ids outside [0, E) (such assignments are left out; callers
// must treat a nonzero status[1] as an error, as the CPU's build_dispatch throws). Throws
// latte::Error when n_experts exceeds kMaxDispatchExperts.
void build_dispatch(const int32_t* expert_ids, int64_t n_tokens, int64_t top_k, int64_t n_experts,
                    int64_t capacity, int64_t* expert_offsets, int64_t* load,
                    int64_t* sorted_assignment, int64_t* assignment_position, int64_t* status,
                    void* workspace, cudaStream_t stream);

// x_sorted[p, :] = x[sorted_assignment[p] / K, :] for the kept rows p < *n_kept, where n_kept
// points to the device count (expert_offsets + E) and max_rows >= it bounds the launch (N*K).
template <typename T>
void gather_rows(const T* x, const int64_t* sorted_assignment, const int64_t* n_kept,
                 int64_t max_rows, int64_t top_k, int64_t dim, T* x_sorted, cudaStream_t stream);

// dx[t, :] = sum_k dx_sorted[assignment_position[t*K+k], :] over kept assignments.
template <typename T>
void gather_rows_backward(const T* dx_sorted, const int64_t* assignment_position, int64_t n_tokens,
                          int64_t top_k, int64_t dim, T* dx, cudaStream_t stream);

// y[t, :] = sum_k weights[t*K+k] * expert_out_sorted[assignment_position[t*K+k], :] over kept
// assignments.
template <typename T>
void combine_forward(const T* expert_out_sorted, const float* weights,
                     const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                     int64_t dim, T* y, cudaStream_t stream);

// For each kept assignment a of token t at sorted position p:
//   d_expert_out_sorted[p, :] = weights[a] * dy[t, :];  dweights[a] = dy[t, :] . out[p, :]
// and dweights[a] = 0 for a dropped assignment.
template <typename T>
void combine_backward(const T* dy, const T* expert_out_sorted, const float* weights,
                      const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                      int64_t dim, T* d_expert_out_sorted, float* dweights, cudaStream_t stream);

}  // namespace latte::kernels::cuda
