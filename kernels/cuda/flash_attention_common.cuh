// What the flash attention kernel files share (included by .cu files only): the problem as the
// kernels receive it by value, the causal visibility rule on the device, the tile loader, and the
// launchers of the two kernel families behind kernels/cuda/flash_attention.cuh:
// - tensor-core kernels (flash_attention_mma.cu): bf16, fragments and accumulators in registers,
//   head dims up to kMmaMaxQkDim / kMmaMaxVDim;
// - shared-memory tile kernels (flash_attention_tiled.cu): fp32 (the exact path the tests
//   compare at 1e-4) and bf16 head dims beyond the tensor-core kernels', up to 256.
#pragma once

#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/tile_order.h"

namespace latte::kernels::cuda::detail {

using cpu::AttentionLayout;
using cpu::AttentionProblem;

inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kLn2 = 0.6931471805599453f;

// The problem with 32-bit sizes and element strides, passed to every kernel by value.
struct FlashParams {
  int q_heads = 0, group = 0, q_len = 0, kv_len = 0;
  int qk_dim = 0, v_dim = 0;
  bool causal = false;
  float scale = 1.f;       // softmax scale
  float scale_log2 = 1.f;  // scale * log2(e): scores in the exp2 domain
  int64_t qb = 0, qt = 0, qh = 0, kb = 0, kt = 0, kh = 0, vb = 0, vt = 0, vh = 0, ob = 0, ot = 0,
          oh = 0;                                                   // element strides
  bool vec_q = false, vec_k = false, vec_v = false, vec_o = false;  // 16-byte global loads allowed
  bool vec_dq = false, vec_dk = false, vec_dv = false;  // 16-byte gradient stores (backward)
  int tile_groups = 1;  // groups of (batch, head) pairs in the launch's tile_grid
};

// Query i attends keys [0, visible_keys(i)) (AttentionProblem::visible_keys).
__device__ __forceinline__ int visible_keys(const FlashParams& p, int i) {
  return p.causal ? min(max(i + p.kv_len - p.q_len + 1, 0), p.kv_len) : p.kv_len;
}
// The first query that attends key j (AttentionProblem::first_query_seeing).
__device__ __forceinline__ int first_query_seeing(const FlashParams& p, int j) {
  return p.causal ? min(max(j - (p.kv_len - p.q_len), 0), p.q_len) : 0;
}

// The grid of a flash kernel whose blocks each own one of `tiles` tiles of one (batch, head)
// pair: one-dimensional, in tile_order.h's order, with the pairs grouped for the current device's
// L2 (sets p.tile_groups, which the kernels read back). `pair_bytes`: what the blocks of one pair
// read in common (pair_bytes_of_keys, pair_bytes_of_queries).
inline dim3 tile_grid(FlashParams& p, int64_t tiles, int64_t heads, int64_t batch,
                      int64_t pair_bytes, const char* op) {
  const int64_t pairs = heads * batch, blocks = tiles * pairs;
  LATTE_CHECK(blocks <= 0x7fffffff)
      << op << ": " << blocks << " blocks exceed a one-dimensional CUDA grid (2^31 - 1)";
  int device = 0, l2_bytes = 0;
  LATTE_CUDA_CHECK(cudaGetDevice(&device));
  LATTE_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
  p.tile_groups = tile_groups(pairs, pair_bytes, l2_bytes);
  return dim3(static_cast<unsigned>(blocks));
}
// The query-row kernels' pairs (batch, query head) share their kv head's keys and values with
// the other query heads of its GQA group; the dk/dv kernel's pairs (batch, kv head) read the
// queries and output gradients of their group's query heads.
inline int64_t pair_bytes_of_keys(const FlashParams& p, int elem_bytes) {
  return int64_t{p.kv_len} * (p.qk_dim + p.v_dim) * elem_bytes / p.group;
}
inline int64_t pair_bytes_of_queries(const FlashParams& p, int elem_bytes) {
  return int64_t{p.q_len} * (p.qk_dim + p.v_dim) * elem_bytes * p.group;
}

// This block's slot in its tile_grid, for `tiles` tiles per pair.
__device__ __forceinline__ TileSlot this_tile_slot(const FlashParams& p, int tiles) {
  return tile_slot(static_cast<int>(blockIdx.x), tiles, static_cast<int>(gridDim.x) / tiles,
                   p.tile_groups);
}

// The query tile of a block in the kernels whose blocks own query rows (forward, dq): the tile of
// `tile_rows` rows that its slot's rank counts from the last one (causal: the longest rows start
// first), of query head h in batch b; g is the kv head the query head reads.
struct QueryTile {
  int i0, rows, h, b, g;
};
__device__ __forceinline__ QueryTile query_tile(const FlashParams& p, int tile_rows) {
  const int tiles = (p.q_len + tile_rows - 1) / tile_rows;
  const TileSlot slot = this_tile_slot(p, tiles);
  const int i0 = (tiles - 1 - slot.rank) * tile_rows;
  const int h = slot.pair % p.q_heads;
  return {i0, min(tile_rows, p.q_len - i0), h, slot.pair / p.q_heads, h / p.group};
}

// The key block of a block of the dk/dv kernels: block rank (rank 0, the first keys, is seen by
// the most queries), of kv head g in batch b.
struct KeyBlock {
  int j0, g, b;
};
__device__ __forceinline__ KeyBlock key_block(const FlashParams& p, int block_keys) {
  const int kv_heads = p.q_heads / p.group;
  const TileSlot slot = this_tile_slot(p, (p.kv_len + block_keys - 1) / block_keys);
  return {slot.rank * block_keys, slot.pair % kv_heads, slot.pair / kv_heads};
}

// Starts copying `rows_valid` rows (`row_stride` elements apart, `dim` contiguous elements each)
// from global memory into a [tile_rows, ld] shared tile, zero-filling columns [dim, dim_pad) and
// rows [rows_valid, tile_rows) (zeros, not garbage: a zero probability times a NaN is NaN). With
// `vec` every row start is 16-byte aligned and whole 16-byte chunks of bf16 go global -> shared
// by cp.async, all in flight together; the rest is stored synchronously. The caller commits and
// waits for the cp.async group (load_tile does both) and __syncthreads() before reading.
template <typename T>
__device__ void issue_tile_load(T* tile, int ld, int tile_rows, int dim_pad, const T* src,
                                int64_t row_stride, int rows_valid, int dim, bool vec) {
  constexpr int kVec = 16 / sizeof(T);
  const int chunks = dim_pad / kVec;
  for (int idx = threadIdx.x; idx < tile_rows * chunks; idx += blockDim.x) {
    const int r = idx / chunks, c = (idx % chunks) * kVec;
    const T* row = src + r * row_stride;
    T* dst = tile + r * ld + c;
    const bool whole = r < rows_valid && vec && c + kVec <= dim;
    if constexpr (sizeof(T) == 2) {
      if (whole) {
        __pipeline_memcpy_async(dst, row + c, 16);  // bf16 leading dims are multiples of 8
        continue;
      }
    }
    union {
      uint4 raw;
      T e[kVec];
    } vals;
    if (whole) {
      vals.raw = *reinterpret_cast<const uint4*>(row + c);
    } else {
      for (int e = 0; e < kVec; ++e)
        vals.e[e] = r < rows_valid && c + e < dim ? row[c + e] : from_float<T>(0.f);
    }
    if constexpr (sizeof(T) == 2) {
      *reinterpret_cast<uint4*>(dst) = vals.raw;
    } else {
      for (int e = 0; e < kVec; ++e) dst[e] = vals.e[e];
    }
  }
}

// issue_tile_load, then waits until the calling thread's copies have landed.
template <typename T>
__device__ void load_tile(T* tile, int ld, int tile_rows, int dim_pad, const T* src,
                          int64_t row_stride, int rows_valid, int dim, bool vec) {
  issue_tile_load(tile, ld, tile_rows, dim_pad, src, row_stride, rows_valid, dim, vec);
  if constexpr (sizeof(T) == 2) {
    __pipeline_commit();
    __pipeline_wait_prior(0);
  }
}

// ---- launchers (host) ----

// Whether the tensor-core kernels take the problem: head dims up to theirs, and a positive softmax
// scale (their online softmax takes the max over raw scores; the tile kernels take any scale).
inline constexpr int kMmaMaxQkDim = 192, kMmaMaxVDim = 128;
inline bool mma_kernels_take(const FlashParams& p) {
  return p.qk_dim <= kMmaMaxQkDim && p.v_dim <= kMmaMaxVDim && p.scale > 0.f;
}

// The tile variants of the tensor-core kernels (flash_tile_variants in flash_attention.cuh):
// warps per block, keys per key tile (forward, dq) or query rows per step (dk/dv), and the blocks
// per SM the kernel's registers must leave room for (__launch_bounds__'s second argument). The
// capped variants test occupancy: at head dims 64/64 and 96/64 the default forward takes 150 and
// 164 registers (one 8-warp block per SM), capped at 128 it runs two without spilling (ptxas,
// sm_90); the dk/dv kernel at 64/64 goes from three 4-warp blocks (144 registers) to four (128,
// 8 bytes spilled), dq from four (108) to five (96, none). Larger head dims spill under these caps.
// The pipelined variants issue the next key tile's products before this tile's softmax or d
// scores (flash_attention_mma.cu); a second score tile and a third K/V buffer make them larger:
// the 8-warp forward takes 255 registers at 128/128 (one block per SM), the 4-warp one with
// 32-key tiles 241 (two blocks; 64-key tiles would leave shared memory for one) and 154 at 64/64
// (three), the dq variant 199 at 64/64 (two).
// Entry 0 of each list is what problems run with; the others are timed against it by the tile
// sweep of `latte_cuda_tests --bench`, so the defaults follow measurements.
struct TileVariant {
  int warps, tile, min_blocks = 1;
  bool pipelined = false;  // forward, dq: the next key tile's products overlap this one's
};
inline constexpr TileVariant kForwardTiles[] = {{8, 64},    {4, 64},          {8, 32},
                                                {8, 32, 2}, {8, 64, 1, true}, {4, 32, 1, true}};
inline constexpr TileVariant kDkDvTiles[] = {{4, 32}, {8, 32}, {4, 64}, {4, 32, 4}};
inline constexpr TileVariant kDqTiles[] = {{4, 32}, {8, 32}, {4, 64}, {4, 32, 5}, {4, 32, 1, true}};

// The tensor-core kernels (bf16; mma_kernels_take(p) must hold) with the given tile variants
// (indices into the lists above, checked by the caller); errors name `op`.
void mma_flash_forward(const FlashParams& p, int64_t batch, const __nv_bfloat16* q,
                       const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* o, float* lse,
                       int variant, cudaStream_t stream, const char* op);
void mma_flash_backward(const FlashParams& p, int64_t batch, int64_t kv_heads,
                        const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                        const __nv_bfloat16* d_o, const float* lse, const float* delta,
                        __nv_bfloat16* dq, __nv_bfloat16* dk, __nv_bfloat16* dv, int dkdv_variant,
                        int dq_variant, cudaStream_t stream, const char* op);

// flash_tile_occupancy for the tensor-core kernels' instantiation that takes these head dims
// (mma_kernels_take must hold for them).
FlashTileOccupancy mma_tile_occupancy(int qk_dim, int v_dim);

// The shared-memory tile kernels (T = float or __nv_bfloat16). Throw latte::Error naming `op` when
// the tiles do not fit the GPU's shared memory.
template <typename T>
void tiled_flash_forward(const FlashParams& p, int64_t batch, const T* q, const T* k, const T* v,
                         T* o, float* lse, cudaStream_t stream, const char* op);
template <typename T>
void tiled_flash_backward(const FlashParams& p, int64_t batch, int64_t kv_heads, const T* q,
                          const T* k, const T* v, const T* d_o, const float* lse,
                          const float* delta, T* dq, T* dk, T* dv, cudaStream_t stream,
                          const char* op);

}  // namespace latte::kernels::cuda::detail
