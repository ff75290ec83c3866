// FlashAttention-2 on the CPU: attention without ever holding a [q_len, kv_len] matrix.
// Forward: one task per (batch, query head, query tile of Br rows) walks the key tiles of Bc
// columns with an online softmax (running row max and sum, the output accumulator rescaled when the
// max grows), and stores only o and the per-row logsumexp. Backward recomputes each score tile from
// q, k and the logsumexp, with delta = rowsum(d_o * o), and d_scores = probs * (d_probs - delta).
// With many (batch, kv head) pairs it runs one task per pair, which walks the key tiles and adds
// each tile's share to dk, dv and the group's dq. With few pairs it runs two passes: one task per
// (batch, kv head, key tile) for dk and dv over the query heads of the group, then one task per
// (batch, query head, query tile) for dq, recomputing the score tiles. Tile products are BLAS GEMMs
// on the strided operands; causal tiles entirely above the diagonal are skipped. Every output
// element is written by one task in a fixed order, so results do not depend on the thread count.
// Scratch is per thread and O(Br * Bc).
#pragma once

#include <cstdint>

#include "kernels/cpu/attention.h"

namespace latte::kernels::cpu {

// How the work is cut: query rows and key columns per tile, and when the backward pass computes dq
// inside the dk/dv pass (one task per (batch, kv head), no recomputation) rather than in a second
// pass over query tiles that recomputes the score tiles (about 40% more arithmetic, but tasks
// enough to keep every thread busy with few heads, as in decoding). A pure function of the
// problem shape, so the choice never depends on the thread count.
struct FlashSchedule {
  int64_t q_tile = 64, kv_tile = 64;
  int64_t fused_backward_min_heads = 8;  // fuse when batch * kv_heads >= this
};

// o = softmax(scale * q k^T + mask) v. lse: [batch, q_heads, q_len] contiguous, the natural log of
// each row's softmax denominator (-inf for a causal row that sees no key; its o row is 0).
template <typename T>
void flash_attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* o,
                             T* lse, FlashSchedule schedule = {});

// Gradients of the forward pass for upstream d_o, from its o and lse. OVERWRITES the dq/dk/dv
// elements addressed by the q/k/v layouts (other elements of those buffers are untouched).
template <typename T>
void flash_attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                              const T* o, const T* d_o, const T* lse, T* dq, T* dk, T* dv,
                              FlashSchedule schedule = {});

}  // namespace latte::kernels::cpu
