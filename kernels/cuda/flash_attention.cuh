// FlashAttention-2 on CUDA: softmax(scale * q k^T + causal mask) v without a [q_len, kv_len]
// matrix in memory, the CUDA twin of kernels/cpu/attention_flash.h (same AttentionProblem: sizes,
// GQA, causal rule, strided q/k/v/o layouts).
//
// How it computes (the kernels: flash_attention_mma.cu, flash_attention_tiled.cu; which problem
// goes where: flash_attention_common.cuh). Nothing is padded in global memory: tile rows past the
// sequence and columns past a head dim are zero-filled on chip and masked.
// - forward: one block per (query tile, query head, batch) walks the key tiles up to the last key
//   its rows see, with an online softmax (running row max and sum in fp32, the fp32 output
//   accumulator rescaled when the max grows); it writes o and the row logsumexp (fp32).
// - backward (recompute, deterministic, no atomics): delta = rowsum(d_o * o) first; then one block
//   per (key tile, kv head, batch) owns dk and dv of its keys and accumulates them over every
//   query tile of every query head of its GQA group; then a separate pass, one block per (query
//   tile, query head, batch), owns dq and recomputes its score tiles. Each output element is
//   written by one block in a fixed order, so results are bit-identical run to run (the price is
//   computing q k^T and d_o v^T twice, as the CPU kernel's two-pass schedule does).
// bf16 problems with qk_dim <= 192 and v_dim <= 128 run on tensor cores with every fragment and
// accumulator in registers (mma.sync); fp32 (the exact path the tests compare at 1e-4) and larger
// bf16 head dims run shared-memory tile kernels (WMMA for bf16, fp32 FMAs for float).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

using cpu::AttentionLayout;
using cpu::AttentionProblem;

// The largest qk_dim and v_dim the kernels take.
inline constexpr int64_t kFlashMaxHeadDim = 256;

// Tile variants of the bf16 tensor-core kernels, for tuning: index 0 of each kernel's list is what
// problems run with by default; `latte_cuda_tests --bench` times every variant against it.
struct FlashTiles {
  int forward = 0, dkdv = 0, dq = 0;
};
// What each variant is ("8 warps x 16 query rows, 64-key tiles"), per kernel.
struct FlashTileVariants {
  std::vector<std::string> forward, dkdv, dq;
};
FlashTileVariants flash_tile_variants();
// How each variant's kernel occupies an SM of the current GPU at these head dims (the
// instantiation problems with them run): registers per thread and resident blocks and warps per
// SM (what registers, shared memory and warps allow). Throws latte::Error for head dims the
// tensor-core kernels do not take.
struct FlashVariantOccupancy {
  int registers = 0, blocks_per_sm = 0, warps_per_sm = 0;
};
struct FlashTileOccupancy {
  std::vector<FlashVariantOccupancy> forward, dkdv, dq;
};
FlashTileOccupancy flash_tile_occupancy(int64_t qk_dim, int64_t v_dim);

// o = softmax(scale * q k^T + mask) v for T = float or latte::bf16. lse: [batch, q_heads, q_len]
// contiguous fp32, the natural log of each row's softmax denominator (-inf for a causal row that
// sees no key; its o row is 0). Throws latte::Error for an invalid problem, a head dim above
// kFlashMaxHeadDim, or tiles that do not fit the GPU's shared memory (only fp32 with head dims
// near 256 on GPUs with about 100 KB per block; A100 and H100 take every supported shape), and
// for a tile variant out of range. `tiles` applies to problems the tensor-core kernels take.
template <typename T>
void flash_attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* o,
                             float* lse, cudaStream_t stream, const FlashTiles& tiles = {});

// Elements of the fp32 workspace flash_attention_backward needs (delta: batch * q_heads * q_len).
int64_t flash_attention_backward_workspace(const AttentionProblem& p);

// Gradients for upstream d_o (laid out like o) from the forward's o and lse. OVERWRITES the
// dq/dk/dv elements addressed by the q/k/v layouts (other elements are untouched).
template <typename T>
void flash_attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                              const T* o, const T* d_o, const float* lse, T* dq, T* dk, T* dv,
                              float* workspace, cudaStream_t stream, const FlashTiles& tiles = {});

}  // namespace latte::kernels::cuda
