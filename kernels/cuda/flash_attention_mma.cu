// FlashAttention-2 for bf16 on tensor cores (sm_80+): o = softmax(scale * q k^T + causal mask) v
// forward with the row logsumexp, and the recomputing backward (dq, dk, dv), for head dims up to
// kMmaMaxQkDim (qk) and kMmaMaxVDim (v), chosen independently.
//
// How it computes. Each warp owns 16 rows of every product (query rows, or key rows in the dk/dv
// kernel) and keeps its accumulators and the score tile in registers as mma.sync m16n8k16
// fragments (bf16 in, fp32 accumulate; mma_sync.cuh): the score fragments become the A operand of
// the next product directly (the accumulator layout of two adjacent 8-column tiles is the A layout
// of one 16-wide k step), so probabilities never touch shared memory. Operands stream through
// shared memory: global -> shared by cp.async, double-buffered (the next tile's copies run while
// this tile is computed), shared -> registers by ldmatrix (.trans where the product needs the
// tile's columns). Tile rows carry 8 bf16 of padding, so the 8 row addresses of an ldmatrix fall
// in different banks. Head dims are compile-time (64/64, 96/64 for MLA's 64 + 32 and 64, 128/128
// and 192/128 instantiations; a problem takes the smallest that holds its dims); the zero-filled
// columns past the real dims are skipped at run time in 16-wide steps, so qk 48 in a 64
// instantiation does 3 of 4 k steps (with_active_steps: a problem whose dims fill its
// instantiation runs the products unguarded, as straight-line code). Causal blocks skip the key
// tiles their rows cannot see; only tiles that cross a row's last visible key (or the sequence end)
// run the masked variant of the softmax code, the rest a variant compiled without the mask.
// Exponentials are one ex2.approx each (fast_exp2.cuh) of one fused multiply-add, and operand tiles
// load as whole 16-byte chunks at fixed per-thread strides where the layout allows
// (issue_operand_tile): the instructions issued per score and per chunk take the same issue slots
// as the tensor-core instructions. Block and tile sizes below are the defaults; kForwardTiles,
// kDkDvTiles and kDqTiles (flash_attention_common.cuh) list the variants that `latte_cuda_tests
// --bench` times.
// - forward: one block of 8 warps per (128 query rows, query head, batch) walks 64-key tiles with
//   the online softmax in registers (running max of raw scores and sum per row; the output
//   accumulator is rescaled only when a row's max grew, decided per warp by a vote; row sums are
//   per lane and reduced once at the end);
// - backward (deterministic, no atomics), like the shared-memory kernels: one block of 4 warps per
//   (64 keys, kv head, batch) owns dk and dv of its keys and walks the 32-query tiles of every
//   query head of its GQA group; one block of 4 warps per (64 query rows, query head, batch) owns
//   dq and walks 32-key tiles. Both recompute probs = exp2(scores * scale log2 e - lse log2 e) and
//   d scores = probs * (d probs - delta); lse and delta of the dk/dv kernel's query tiles arrive
//   by cp.async with the tiles.
// Results go registers -> the warp's own rows of a shared tile -> global memory in 16-byte stores.
#include <cuda_pipeline.h>

#include <iterator>
#include <numeric>
#include <type_traits>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fast_exp2.cuh"
#include "kernels/cuda/flash_attention_common.cuh"
#include "kernels/cuda/mma_sync.cuh"

namespace latte::kernels::cuda::detail {

namespace {

using bf16_t = __nv_bfloat16;

constexpr int kSkew = 8;  // bf16 elements of padding per shared tile row

template <int QK_, int V_>
struct HeadDims {
  static constexpr int kQK = QK_, kV = V_;
  static constexpr int kLdQK = kQK + kSkew, kLdV = kV + kSkew;  // shared tile leading dims
  static_assert(kQK % 16 == 0 && kV % 16 == 0 && kQK >= kV,
                "outputs are staged in the rows of a qk-wide tile");
};

// ---- warp-level fragment helpers (g = lane / 4, t = lane % 4 as in mma_sync.cuh) ----

__device__ __forceinline__ int lane_id() {
  return static_cast<int>(threadIdx.x) % kWarp;
}

// The A fragment of the 16x16 block at (row0, col0) of a row-major shared tile.
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16_t* tile, int ld, int row0,
                                       int col0) {
  const int l = lane_id();
  ldmatrix_x4(a, tile + (row0 + l % 8 + (l / 8) % 2 * 8) * ld + col0 + l / 16 * 8);
}

// B fragments for k in [k0, k0 + 16) of the two 8-column tiles starting at n0, where
// B[k][n] = tile[n][k] (the tile holds B's columns as rows, as k does for q k^T): b[0..1] for
// columns n0.., b[2..3] for n0 + 8...
__device__ __forceinline__ void load_b_from_rows(uint32_t (&b)[4], const bf16_t* tile, int ld,
                                                 int n0, int k0) {
  const int l = lane_id();
  ldmatrix_x4(b, tile + (n0 + l % 8 + l / 16 * 8) * ld + k0 + (l / 8) % 2 * 8);
}

// As load_b_from_rows for B[k][n] = tile[k][n] (a row-major B, as v is for probs v).
__device__ __forceinline__ void load_b_from_cols(uint32_t (&b)[4], const bf16_t* tile, int ld,
                                                 int k0, int n0) {
  const int l = lane_id();
  ldmatrix_x4_trans(b, tile + (k0 + l % 8 + (l / 8) % 2 * 8) * ld + n0 + l / 16 * 8);
}

// acc[2n], acc[2n + 1] += a * (the two B tiles in b).
__device__ __forceinline__ void mma_pair(float (&lo)[4], float (&hi)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[4]) {
  const uint32_t b_lo[2] = {b[0], b[1]}, b_hi[2] = {b[2], b[3]};
  mma_bf16_16816(lo, a, b_lo);
  mma_bf16_16816(hi, a, b_hi);
}

// The A fragment of a 16-wide k step made of two adjacent 8-column accumulator tiles.
__device__ __forceinline__ void accumulators_as_a(uint32_t (&a)[4], const float (&lo)[4],
                                                  const float (&hi)[4]) {
  a[0] = pack_bf16x2(lo[0], lo[1]);
  a[1] = pack_bf16x2(lo[2], lo[3]);
  a[2] = pack_bf16x2(hi[0], hi[1]);
  a[3] = pack_bf16x2(hi[2], hi[3]);
}

// Calls body(active) with active(i) saying whether 16-wide step i of a K-wide head dim holds some
// of its first `dim` columns (the rest are zero-filled: a qk dim of 48 in a 64 instantiation takes
// 3 of 4 steps). When every step is active (a problem whose dims are its instantiation's), active
// is the constant true: the steps compile to one straight-line block, in which ptxas issues a
// step's ldmatrix ahead of the previous step's mma. Guarded steps compile to a basic block each,
// whose shared-memory loads are waited for one step at a time (the products' SASS had one block
// per 16-wide step before).
template <int K, class Body>
__device__ __forceinline__ void with_active_steps(int dim, Body&& body) {
  if (dim > K - 16)
    body([](int) { return true; });
  else
    body([dim](int i) { return i * 16 < dim; });
}

// acc (16 x 8 N) += the warp's 16 rows of `a_tile` (columns [0, k_dim) in 16-wide steps, up to
// K) times B[k][n] = b_tile[n][k] for n in [0, 8 N).
template <int K, int N>
__device__ __forceinline__ void mma_rows_times_rows(float (&acc)[N][4], const bf16_t* a_tile,
                                                    int lda, int row0, const bf16_t* b_tile,
                                                    int ldb, int k_dim) {
  with_active_steps<K>(k_dim, [&](auto active) {
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
      if (active(kk)) {
        uint32_t a[4];
        load_a(a, a_tile, lda, row0, kk * 16);
#pragma unroll
        for (int n = 0; n < N / 2; ++n) {
          uint32_t b[4];
          load_b_from_rows(b, b_tile, ldb, n * 16, kk * 16);
          mma_pair(acc[2 * n], acc[2 * n + 1], a, b);
        }
      }
    }
  });
}

// acc (16 x 8 N, columns [0, n_dim) computed in 16-wide steps) += the A operand held in the
// accumulator tiles `a_acc` (16 x 8 KT: k in [0, 8 KT)) times B[k][n] = b_tile[k][n].
template <int KT, int N>
__device__ __forceinline__ void mma_acc_times_cols(float (&acc)[N][4], const float (&a_acc)[KT][4],
                                                   const bf16_t* b_tile, int ldb, int n_dim) {
  with_active_steps<8 * N>(n_dim, [&](auto active) {
#pragma unroll
    for (int kk = 0; kk < KT / 2; ++kk) {
      uint32_t a[4];
      accumulators_as_a(a, a_acc[2 * kk], a_acc[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < N / 2; ++n) {
        if (active(n)) {
          uint32_t b[4];
          load_b_from_cols(b, b_tile, ldb, kk * 16, n * 16);
          mma_pair(acc[2 * n], acc[2 * n + 1], a, b);
        }
      }
    }
  });
}

template <int N>
__device__ __forceinline__ void zero(float (&acc)[N][4]) {
#pragma unroll
  for (int n = 0; n < N; ++n)
    for (int e = 0; e < 4; ++e) acc[n][e] = 0.f;
}

// Writes the accumulator tiles (16 rows x 8 N, times `factor[r]` for the lane's rows g and g + 8)
// as bf16 into rows [row0, row0 + 16) of a shared tile, then copies `rows` of them (`cols`
// columns) to global memory, 16 bytes per store where `vec` allows. One warp; no block barrier.
template <int N>
__device__ void store_rows(const float (&acc)[N][4], const float (&factor)[2], bf16_t* stage,
                           int ld, int row0, bf16_t* dst, int64_t row_stride, int rows, int cols,
                           bool vec) {
  const int l = lane_id(), g = l / 4, t = l % 4;
#pragma unroll
  for (int n = 0; n < N; ++n)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const uint32_t pair = pack_bf16x2(acc[n][2 * r] * factor[r], acc[n][2 * r + 1] * factor[r]);
      *reinterpret_cast<uint32_t*>(stage + (row0 + g + 8 * r) * ld + n * 8 + 2 * t) = pair;
    }
  __syncwarp();
  constexpr int kChunks = N;  // 8 bf16 per chunk
  for (int idx = l; idx < rows * kChunks; idx += kWarp) {
    const int r = idx / kChunks, c = idx % kChunks * 8;
    if (c >= cols) continue;
    const bf16_t* src = stage + (row0 + r) * ld + c;
    bf16_t* out = dst + r * row_stride + c;
    if (vec && c + 8 <= cols) {
      *reinterpret_cast<uint4*>(out) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int e = 0; e < 8 && c + e < cols; ++e) out[e] = src[e];
    }
  }
}

// The quad (4 lanes sharing rows g, g + 8) reductions of a fragment row.
__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(kFullMask, x, 1));
  return fmaxf(x, __shfl_xor_sync(kFullMask, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(kFullMask, x, 1);
  return x + __shfl_xor_sync(kFullMask, x, 2);
}

// Starts copying a kRows x kDimPad operand tile into shared memory, as issue_tile_load does, for a
// block of kThreads threads. With `vec` and whole 16-byte chunks (dim a multiple of 8), the
// threads split each row's chunks among kLanesPerRow of them and walk the rows at a fixed stride,
// so a thread keeps its columns and steps its pointers: per chunk one cp.async, or one zero store
// past rows_valid or dim. Otherwise issue_tile_load's general loop.
template <int kRows, int kDimPad, int kThreads>
__device__ __forceinline__ void issue_operand_tile(bf16_t* tile, int ld, const bf16_t* src,
                                                   int64_t row_stride, int rows_valid, int dim,
                                                   bool vec) {
  if (!vec || dim % 8 != 0) {
    issue_tile_load(tile, ld, kRows, kDimPad, src, row_stride, rows_valid, dim, vec);
    return;
  }
  constexpr int kChunks = kDimPad / 8, kLanesPerRow = std::gcd(kChunks, kThreads);
  constexpr int kRowStep = kThreads / kLanesPerRow;
  const int lane_in_row = static_cast<int>(threadIdx.x) % kLanesPerRow;
  int r = static_cast<int>(threadIdx.x) / kLanesPerRow;
  const bf16_t* from = src + r * row_stride + lane_in_row * 8;
  bf16_t* to = tile + r * ld + lane_in_row * 8;
#pragma unroll
  for (int i = 0; i < (kRows + kRowStep - 1) / kRowStep; ++i) {
    if (kRows % kRowStep == 0 || r < kRows) {
#pragma unroll
      for (int j = 0; j < kChunks / kLanesPerRow; ++j) {
        const int c = (lane_in_row + j * kLanesPerRow) * 8;
        if (r < rows_valid && c < dim)
          __pipeline_memcpy_async(to + j * kLanesPerRow * 8, from + j * kLanesPerRow * 8, 16);
        else
          *reinterpret_cast<uint4*>(to + j * kLanesPerRow * 8) = make_uint4(0, 0, 0, 0);
      }
    }
    r += kRowStep;
    from += kRowStep * row_stride;
    to += kRowStep * ld;
  }
}

// How far the query-row kernels (forward, dq) walk the keys: the block loads key tiles up to its
// last row's last visible key; a warp computes up to its own last row's (no key for a warp past
// the sequence, as in decoding) and masks only tiles past its first row's last visible key.
struct KeyWalk {
  int tiles, warp_keys, unmasked_keys;
};
__device__ __forceinline__ KeyWalk key_walk(const FlashParams& p, const QueryTile& t, int row0,
                                            int keys_per_tile) {
  const int first = t.i0 + row0;
  return {(visible_keys(p, t.i0 + t.rows - 1) + keys_per_tile - 1) / keys_per_tile,
          first < p.q_len ? visible_keys(p, min(first + 15, p.q_len - 1)) : 0,
          visible_keys(p, first)};
}

// Starts copying key tile `tile` (kKeys rows of kv head t.g from k and v) into buffer
// tile % kStages of the shared tiles ks and vs.
template <class D, int kKeys, int kThreads, int kStages = 2>
__device__ void issue_key_tile(const FlashParams& p, const QueryTile& t, const bf16_t* k,
                               const bf16_t* v, bf16_t* ks, bf16_t* vs, int tile) {
  const int j0 = tile * kKeys, cols = min(kKeys, p.kv_len - j0);
  issue_operand_tile<kKeys, D::kQK, kThreads>(ks + tile % kStages * kKeys * D::kLdQK, D::kLdQK,
                                              k + t.b * p.kb + t.g * p.kh + j0 * p.kt, p.kt, cols,
                                              p.qk_dim, p.vec_k);
  issue_operand_tile<kKeys, D::kV, kThreads>(vs + tile % kStages * kKeys * D::kLdV, D::kLdV,
                                             v + t.b * p.vb + t.g * p.vh + j0 * p.vt, p.vt, cols,
                                             p.v_dim, p.vec_v);
}

// The top of step `step` of a double-buffered walk: waits until this step's copies have landed
// for every thread (and every warp is done with the other buffer), then starts the next step's.
template <class IssueStep>
__device__ __forceinline__ void begin_step(int step, int steps, IssueStep&& issue_step) {
  __pipeline_wait_prior(0);
  __syncthreads();
  if (step + 1 < steps) issue_step(step + 1);
  __pipeline_commit();
}

// The pipelined key walk of the query-row kernels (forward, dq), over three K/V buffers: tile
// t + 2's copies start at the top of step t, once tile t + 1 has landed for every thread and every
// warp is done with the buffers of tile t - 1. Calls start() once the block's own tiles and key
// tile 0 have landed; then, for each tile the warp has keys in, overlapped(tile) when the tile
// needs no mask and the warp has keys in the next one (the caller issues the next tile's
// products first, so they run through this tile's softmax), else step(tile, next).
template <class IssueTile, class Start, class Overlapped, class Step>
__device__ __forceinline__ void pipelined_key_walk(const KeyWalk& walk, int keys,
                                                   IssueTile&& issue_tile, Start&& start,
                                                   Overlapped&& overlapped, Step&& step) {
  if (walk.tiles > 1) issue_tile(1);
  __pipeline_commit();
  __pipeline_wait_prior(1);
  __syncthreads();
  start();
  for (int tile = 0; tile < walk.tiles; ++tile) {
    __pipeline_wait_prior(0);
    __syncthreads();
    if (tile + 2 < walk.tiles) issue_tile(tile + 2);
    __pipeline_commit();
    const int j0 = tile * keys;
    if (j0 >= walk.warp_keys) continue;
    const bool next = j0 + keys < walk.warp_keys;  // the warp has keys in tile + 1
    if (next && j0 + keys <= walk.unmasked_keys)
      overlapped(tile);
    else
      step(tile, next);
  }
}

// dst = src, fragment by fragment (the next tile's products becoming this tile's).
template <int N>
__device__ __forceinline__ void assign(float (&dst)[N][4], const float (&src)[N][4]) {
#pragma unroll
  for (int n = 0; n < N; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dst[n][e] = src[n][e];
}

// ---- forward ----

// The online softmax of one key tile for the lane's rows g and g + 8 (r = 0, 1): turns the raw
// scores s into unnormalized probabilities 2^(s scale log2 e - max scale log2 e), updates the
// running max and sum and returns in `rescale` the factor that brings earlier sums and outputs to
// the new max. The max is over raw scores (the scale is > 0, so it commutes with the max), which
// makes each probability one fused multiply-add and one exp2. kMasked: the tile crosses a row's
// last visible key; keys at or past limit[r] (tile columns) get probability 0.
template <bool kMasked, int N>
__device__ __forceinline__ void softmax_tile(float (&s)[N][4], float (&row_max)[2],
                                             float (&row_sum)[2], float (&rescale)[2],
                                             const int (&limit)[2], float scale_log2) {
  const int col_in_tile = lane_id() % 4 * 2;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float tile_max = -INFINITY;
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float& x = s[n][2 * r + e];
        if (kMasked && n * 8 + col_in_tile + e >= limit[r]) x = -INFINITY;
        tile_max = fmaxf(tile_max, x);
      }
    const float new_max = fmaxf(row_max[r], quad_max(tile_max));
    // A row that has seen no key keeps max -inf: shift 0, so its -inf scores give 0, not NaN.
    const float shift = new_max == -INFINITY ? 0.f : new_max * scale_log2;
    rescale[r] = new_max == row_max[r] ? 1.f : fast_exp2((row_max[r] - new_max) * scale_log2);
    row_max[r] = new_max;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float& x = s[n][2 * r + e];
        x = fast_exp2(fmaf(x, scale_log2, -shift));
        sum += x;
      }
    row_sum[r] = row_sum[r] * rescale[r] + sum;
  }
}

// Tile shapes (flash_tile_variants): warps per block (16 rows each), keys per key tile, the blocks
// per SM the registers must allow, and whether the key walk is pipelined (below). Key and value
// tiles have two buffers (the next tile's copies land while this one is computed), three when
// pipelined (the next tile's keys are read while this tile's values still are).
template <class D, int Warps, int Keys, int MinBlocks, bool Pipelined>
struct ForwardShape {
  static constexpr int kWarps = Warps, kThreads = kWarps * kWarp, kMinBlocks = MinBlocks;
  static constexpr int kRows = 16 * kWarps, kKeys = Keys;
  static constexpr bool kPipelined = Pipelined;
  static constexpr int kStages = Pipelined ? 3 : 2;
  static constexpr int kQElems = kRows * D::kLdQK, kKElems = kKeys * D::kLdQK,
                       kVElems = kKeys * D::kLdV;
  static constexpr int kSmemBytes = (kQElems + kStages * (kKElems + kVElems)) * sizeof(bf16_t);
};

// The pipelined walk: a warp issues the next key tile's score products before this tile's
// softmax, in one straight-line block, so the tensor pipe works through the softmax's exp2,
// max and sum instructions instead of waiting for them (the unpipelined walk runs scores,
// softmax and probs v one after the other, and only other warps fill the gaps; the 8 warps of a
// block meet at a barrier every tile and so tend to reach their softmax together). Tiles that
// need the mask, the last tile, and problems whose qk dim does not fill the instantiation take
// the unpipelined steps; the costs are a second score tile in registers and a third K/V buffer.
template <class D, class S>
__global__ void __launch_bounds__(S::kThreads, S::kMinBlocks)
    mma_forward_kernel(const FlashParams p, const bf16_t* __restrict__ q,
                       const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                       bf16_t* __restrict__ o, float* __restrict__ lse) {
  constexpr int kQK = D::kQK, kV = D::kV, kKeys = S::kKeys, kStages = S::kStages;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);
  bf16_t* ks = qs + S::kQElems;            // kStages buffers
  bf16_t* vs = ks + kStages * S::kKElems;  // kStages buffers

  const QueryTile t = query_tile(p, S::kRows);
  const int i0 = t.i0, rows = t.rows, h = t.h, b = t.b;
  const int row0 = threadIdx.x / kWarp * 16, lane = lane_id(), quad_row = lane / 4;
  const KeyWalk walk = key_walk(p, t, row0, kKeys);
  auto issue_kv = [&](int tile) {
    issue_key_tile<D, kKeys, S::kThreads, kStages>(p, t, k, v, ks, vs, tile);
  };
  issue_operand_tile<S::kRows, kQK, S::kThreads>(qs, D::kLdQK, q + b * p.qb + h * p.qh + i0 * p.qt,
                                                 p.qt, rows, p.qk_dim, p.vec_q);
  if (walk.tiles > 0) issue_kv(0);
  __pipeline_commit();

  uint32_t q_frag[kQK / 16][4];
  auto load_q = [&] {
#pragma unroll
    for (int kk = 0; kk < kQK / 16; ++kk) load_a(q_frag[kk], qs, D::kLdQK, row0, kk * 16);
  };
  float acc[kV / 8][4];
  zero(acc);
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};  // raw-score max

  // s = the warp's raw scores q k^T for key tile `tile`, over the first `steps` 16-wide steps of
  // the qk dim: a constant kQK / 16 at a call site makes the product straight-line code, as
  // with_active_steps does. (Neither this nor softmax_times_v can be a generic lambda, as
  // with_active_steps's body is: nvcc 13's front end crashes on a generic lambda that takes an
  // array whose bound is a local constant. Their flags are run-time values that fold at each
  // call site once the lambda is inlined.)
  constexpr int kQkSteps = kQK / 16;
  const int qk_steps = (p.qk_dim + 15) / 16;
  auto scores = [&](float(&s)[kKeys / 8][4], int tile, int steps) {
    const bf16_t* kt = ks + tile % kStages * S::kKElems;
    zero(s);
#pragma unroll
    for (int kk = 0; kk < kQkSteps; ++kk) {
      if (kk < steps) {
#pragma unroll
        for (int n = 0; n < kKeys / 16; ++n) {
          uint32_t bk[4];
          load_b_from_rows(bk, kt, D::kLdQK, n * 16, kk * 16);
          mma_pair(s[2 * n], s[2 * n + 1], q_frag[kk], bk);
        }
      }
    }
  };
  // The online softmax of key tile `tile`'s scores s, then acc += probs v. `masked`: the tile
  // crosses a row's last visible key.
  auto softmax_times_v = [&](float(&s)[kKeys / 8][4], int tile, bool masked) {
    const int j0 = tile * kKeys;
    float rescale[2];
    if (masked) {
      const int limit[2] = {visible_keys(p, i0 + row0 + quad_row) - j0,
                            visible_keys(p, i0 + row0 + quad_row + 8) - j0};
      softmax_tile<true>(s, row_max, row_sum, rescale, limit, p.scale_log2);
    } else {
      softmax_tile<false>(s, row_max, row_sum, rescale, {}, p.scale_log2);
    }
    // Once the rows' maxima settle, most tiles leave them alone: skip multiplying by 1.
    if (__any_sync(kFullMask, rescale[0] != 1.f || rescale[1] != 1.f)) {
#pragma unroll
      for (int n = 0; n < kV / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[n][e] *= rescale[e / 2];
    }
    mma_acc_times_cols(acc, s, vs + tile % kStages * S::kVElems, D::kLdV, p.v_dim);
  };
  const auto masked = [&](int tile) { return tile * kKeys + kKeys > walk.unmasked_keys; };

  if (!S::kPipelined || qk_steps < kQkSteps) {
    for (int tile = 0; tile < walk.tiles; ++tile) {
      begin_step(tile, walk.tiles, issue_kv);
      if (tile == 0) load_q();
      if (tile * kKeys >= walk.warp_keys) continue;
      float s[kKeys / 8][4];
      if (qk_steps == kQkSteps)
        scores(s, tile, kQkSteps);
      else
        scores(s, tile, qk_steps);
      softmax_times_v(s, tile, masked(tile));
    }
  } else {
    float s[kKeys / 8][4];  // the scores of the tile the walk is at
    pipelined_key_walk(
        walk, kKeys, issue_kv,
        [&] {
          load_q();
          if (walk.warp_keys > 0) scores(s, 0, kQkSteps);
        },
        [&](int tile) {
          float s_next[kKeys / 8][4];
          scores(s_next, tile + 1, kQkSteps);
          softmax_times_v(s, tile, false);
          assign(s, s_next);
        },
        [&](int tile, bool next) {
          softmax_times_v(s, tile, masked(tile));
          if (next) scores(s, tile + 1, kQkSteps);
        });
  }

  __pipeline_wait_prior(0);  // no copy may land in qs after the warp reuses its rows
  __syncthreads();
  float inv_sum[2];
  float* lse_rows = lse + (static_cast<int64_t>(b) * p.q_heads + h) * p.q_len;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float total = quad_sum(row_sum[r]);
    inv_sum[r] = total > 0.f ? 1.f / total : 0.f;
    const int i = i0 + row0 + quad_row + 8 * r;
    if (lane % 4 == 0 && i < p.q_len)
      lse_rows[i] = total > 0.f ? row_max[r] * p.scale + logf(total) : -INFINITY;
  }
  store_rows(acc, inv_sum, qs, D::kLdQK, row0, o + b * p.ob + h * p.oh + (i0 + row0) * p.ot, p.ot,
             max(0, min(16, rows - row0)), p.v_dim, p.vec_o);
}

// ---- backward: dq ----

// Warps per block (16 query rows each), keys per key tile, the blocks per SM the registers must
// allow, and whether the key walk is pipelined (as the forward's: the next key tile's score and
// d probs products are issued before this tile's d scores; three K/V buffers).
template <class D, int Warps, int Keys, int MinBlocks, bool Pipelined>
struct DqShape {
  static constexpr int kWarps = Warps, kThreads = kWarps * kWarp, kMinBlocks = MinBlocks;
  static constexpr int kRows = 16 * kWarps, kKeys = Keys;
  static constexpr bool kPipelined = Pipelined;
  static constexpr int kStages = Pipelined ? 3 : 2;
  static constexpr int kQElems = kRows * D::kLdQK, kDoElems = kRows * D::kLdV,
                       kKElems = kKeys * D::kLdQK, kVElems = kKeys * D::kLdV;
  static constexpr int kSmemBytes =
      (kQElems + kDoElems + kStages * (kKElems + kVElems)) * sizeof(bf16_t);
};

template <class D, class S>
__global__ void __launch_bounds__(S::kThreads, S::kMinBlocks)
    mma_backward_dq_kernel(const FlashParams p, const bf16_t* __restrict__ q,
                           const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                           const bf16_t* __restrict__ d_o, const float* __restrict__ lse,
                           const float* __restrict__ delta, bf16_t* __restrict__ dq) {
  constexpr int kQK = D::kQK, kV = D::kV, kKeys = S::kKeys, kStages = S::kStages;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* qs = reinterpret_cast<bf16_t*>(smem);
  bf16_t* dos = qs + S::kQElems;
  bf16_t* ks = dos + S::kDoElems;          // kStages buffers
  bf16_t* vs = ks + kStages * S::kKElems;  // kStages buffers

  const QueryTile t = query_tile(p, S::kRows);
  const int i0 = t.i0, rows = t.rows, h = t.h, b = t.b;
  const int row0 = threadIdx.x / kWarp * 16, lane = lane_id(), quad_row = lane / 4;
  const int col_in_tile = lane % 4 * 2;
  const KeyWalk walk = key_walk(p, t, row0, kKeys);
  auto issue_kv = [&](int tile) {
    issue_key_tile<D, kKeys, S::kThreads, kStages>(p, t, k, v, ks, vs, tile);
  };
  issue_operand_tile<S::kRows, kQK, S::kThreads>(qs, D::kLdQK, q + b * p.qb + h * p.qh + i0 * p.qt,
                                                 p.qt, rows, p.qk_dim, p.vec_q);
  issue_operand_tile<S::kRows, kV, S::kThreads>(dos, D::kLdV, d_o + b * p.ob + h * p.oh + i0 * p.ot,
                                                p.ot, rows, p.v_dim, p.vec_o);
  if (walk.tiles > 0) issue_kv(0);
  __pipeline_commit();

  // The lane's rows: lse in the exp2 domain (+inf past the sequence: probability 0) and delta.
  float lse2[2], row_delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = i0 + row0 + quad_row + 8 * r;
    const int64_t at = (static_cast<int64_t>(b) * p.q_heads + h) * p.q_len + i;
    lse2[r] = i < p.q_len ? lse[at] * kLog2e : INFINITY;
    row_delta[r] = i < p.q_len ? delta[at] : 0.f;
  }

  float acc[kQK / 8][4];
  zero(acc);
  // s = scores and dp = d probs of key tile `tile`, over head dims qk_dim and v_dim (the
  // instantiation's own as constants at a call site: straight-line products).
  auto products = [&](float(&s)[kKeys / 8][4], float(&dp)[kKeys / 8][4], int tile, int qk_dim,
                      int v_dim) {
    zero(s);
    zero(dp);
    mma_rows_times_rows<kQK>(s, qs, D::kLdQK, row0, ks + tile % kStages * S::kKElems, D::kLdQK,
                             qk_dim);
    mma_rows_times_rows<kV>(dp, dos, D::kLdV, row0, vs + tile % kStages * S::kVElems, D::kLdV,
                            v_dim);
  };
  // s becomes d scores = probs (d probs - delta), then acc += d scores k. `masked`: the tile
  // crosses a row's last visible key (a run-time flag that folds at call sites passing a
  // constant, once the lambda is inlined).
  auto d_scores_times_k = [&](float(&s)[kKeys / 8][4], const float(&dp)[kKeys / 8][4], int tile,
                              bool masked) {
    const int j0 = tile * kKeys;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int limit = masked ? visible_keys(p, i0 + row0 + quad_row + 8 * r) - j0 : kKeys;
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float prob = fast_exp2(fmaf(s[n][2 * r + e], p.scale_log2, -lse2[r]));
          if (masked && n * 8 + col_in_tile + e >= limit) prob = 0.f;
          s[n][2 * r + e] = prob * (dp[n][2 * r + e] - row_delta[r]);
        }
    }
    mma_acc_times_cols(acc, s, ks + tile % kStages * S::kKElems, D::kLdQK, p.qk_dim);
  };
  const auto masked = [&](int tile) { return tile * kKeys + kKeys > walk.unmasked_keys; };

  if (!S::kPipelined || p.qk_dim <= kQK - 16 || p.v_dim <= kV - 16) {
    for (int tile = 0; tile < walk.tiles; ++tile) {
      begin_step(tile, walk.tiles, issue_kv);
      if (tile * kKeys >= walk.warp_keys) continue;
      float s[kKeys / 8][4], dp[kKeys / 8][4];
      products(s, dp, tile, p.qk_dim, p.v_dim);
      if (masked(tile))
        d_scores_times_k(s, dp, tile, true);
      else
        d_scores_times_k(s, dp, tile, false);
    }
  } else {
    float s[kKeys / 8][4], dp[kKeys / 8][4];  // the products of the tile the walk is at
    pipelined_key_walk(
        walk, kKeys, issue_kv,
        [&] {
          if (walk.warp_keys > 0) products(s, dp, 0, kQK, kV);
        },
        [&](int tile) {
          float s_next[kKeys / 8][4], dp_next[kKeys / 8][4];
          products(s_next, dp_next, tile + 1, kQK, kV);
          d_scores_times_k(s, dp, tile, false);
          assign(s, s_next);
          assign(dp, dp_next);
        },
        [&](int tile, bool next) {
          d_scores_times_k(s, dp, tile, masked(tile));
          if (next) products(s, dp, tile + 1, kQK, kV);
        });
  }

  __pipeline_wait_prior(0);
  __syncthreads();
  const float factor[2] = {p.scale, p.scale};
  store_rows(acc, factor, qs, D::kLdQK, row0, dq + b * p.qb + h * p.qh + (i0 + row0) * p.qt, p.qt,
             max(0, min(16, rows - row0)), p.qk_dim, p.vec_dq);
}

// ---- backward: dk and dv ----

// Warps per block (16 keys each), query rows per step and the blocks per SM the registers must
// allow.
template <class D, int Warps, int Rows, int MinBlocks>
struct DkDvShape {
  static constexpr int kWarps = Warps, kThreads = kWarps * kWarp, kMinBlocks = MinBlocks;
  static constexpr int kKeys = 16 * kWarps, kRows = Rows;
  static constexpr int kKElems = kKeys * D::kLdQK, kVElems = kKeys * D::kLdV,
                       kQElems = kRows * D::kLdQK, kDoElems = kRows * D::kLdV;
  static constexpr int kTileBytes = (kKElems + kVElems + 2 * (kQElems + kDoElems)) * 2;
  static constexpr int kSmemBytes = kTileBytes + 2 * 2 * kRows * sizeof(float);
};

template <class D, class S>
__global__ void __launch_bounds__(S::kThreads, S::kMinBlocks)
    mma_backward_dkdv_kernel(const FlashParams p, const bf16_t* __restrict__ q,
                             const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
                             const bf16_t* __restrict__ d_o, const float* __restrict__ lse,
                             const float* __restrict__ delta, bf16_t* __restrict__ dk,
                             bf16_t* __restrict__ dv) {
  constexpr int kQK = D::kQK, kV = D::kV, kRows = S::kRows;
  extern __shared__ __align__(128) unsigned char smem[];
  bf16_t* ks = reinterpret_cast<bf16_t*>(smem);
  bf16_t* vs = ks + S::kKElems;
  bf16_t* qs = vs + S::kVElems;                                   // two buffers
  bf16_t* dos = qs + 2 * S::kQElems;                              // two buffers
  float* lse_s = reinterpret_cast<float*>(smem + S::kTileBytes);  // two buffers
  float* delta_s = lse_s + 2 * kRows;                             // two buffers

  const KeyBlock kb = key_block(p, S::kKeys);
  const int j0 = kb.j0, g = kb.g, b = kb.b;
  const int cols = min(S::kKeys, p.kv_len - j0);
  const int row0 = threadIdx.x / kWarp * 16, lane = lane_id(), quad_row = lane / 4;
  const int col_in_tile = lane % 4 * 2;
  const int key0 = j0 + row0;  // the warp's first key
  // Query tiles start at the first query that sees the block's first key; a warp computes from
  // the first that sees its own.
  const int i_start = first_query_seeing(p, j0);
  const int warp_first_query = first_query_seeing(p, key0);
  const int tiles_per_head = (p.q_len - i_start + kRows - 1) / kRows;
  const int n_steps = p.group * tiles_per_head;

  // A step's query tile: rows [i0, i0 + kRows) of query head h. Steps walk the tiles of one head
  // after another, so the next one is a compare and an add away (no division by tiles_per_head).
  struct QueryStep {
    int h, i0;
  };
  auto following = [&](QueryStep s) {
    s.i0 += kRows;
    if (s.i0 >= p.q_len) s = {s.h + 1, i_start};
    return s;
  };
  auto issue_q = [&](QueryStep s, int buf) {
    const int h = s.h, i0 = s.i0, rows = min(kRows, p.q_len - i0);
    issue_operand_tile<kRows, kQK, S::kThreads>(qs + buf * S::kQElems, D::kLdQK,
                                                q + b * p.qb + h * p.qh + i0 * p.qt, p.qt, rows,
                                                p.qk_dim, p.vec_q);
    issue_operand_tile<kRows, kV, S::kThreads>(dos + buf * S::kDoElems, D::kLdV,
                                               d_o + b * p.ob + h * p.oh + i0 * p.ot, p.ot, rows,
                                               p.v_dim, p.vec_o);
    for (int r = threadIdx.x; r < kRows; r += blockDim.x) {
      const int64_t at = (static_cast<int64_t>(b) * p.q_heads + h) * p.q_len + i0 + r;
      if (r < rows) {
        __pipeline_memcpy_async(lse_s + buf * kRows + r, lse + at, sizeof(float));
        __pipeline_memcpy_async(delta_s + buf * kRows + r, delta + at, sizeof(float));
      } else {
        lse_s[buf * kRows + r] = INFINITY;  // past the end: probability 0
        delta_s[buf * kRows + r] = 0.f;
      }
    }
  };
  issue_operand_tile<S::kKeys, kQK, S::kThreads>(ks, D::kLdQK, k + b * p.kb + g * p.kh + j0 * p.kt,
                                                 p.kt, cols, p.qk_dim, p.vec_k);
  issue_operand_tile<S::kKeys, kV, S::kThreads>(vs, D::kLdV, v + b * p.vb + g * p.vh + j0 * p.vt,
                                                p.vt, cols, p.v_dim, p.vec_v);
  QueryStep step_tile = {g * p.group, i_start};
  if (n_steps > 0) issue_q(step_tile, 0);
  __pipeline_commit();

  float acc_k[kQK / 8][4], acc_v[kV / 8][4];
  zero(acc_k);
  zero(acc_v);
  for (int step = 0; step < n_steps; ++step) {
    const QueryStep next = following(step_tile);
    begin_step(step, n_steps, [&](int next_step) { issue_q(next, next_step % 2); });
    const int i0 = step_tile.i0;
    step_tile = next;
    // Idle when the warp has no keys or no query of the tile sees them.
    if (key0 >= p.kv_len || i0 + kRows <= warp_first_query) continue;
    const int buf = step % 2;
    const bf16_t* qt = qs + buf * S::kQElems;
    const bf16_t* dot = dos + buf * S::kDoElems;
    const float* lse_t = lse_s + buf * kRows;
    const float* delta_t = delta_s + buf * kRows;

    // Transposed tiles, key rows by query columns: scores^T = k q^T, d probs^T = v d_o^T.
    float st[kRows / 8][4], dpt[kRows / 8][4];
    zero(st);
    zero(dpt);
    mma_rows_times_rows<kQK>(st, ks, D::kLdQK, row0, qt, D::kLdQK, p.qk_dim);
    mma_rows_times_rows<kV>(dpt, vs, D::kLdV, row0, dot, D::kLdV, p.v_dim);
    // st becomes probs^T and dpt d scores^T; kMasked: a query of the tile cannot see all of the
    // warp's keys.
    auto probs_and_d_scores = [&](auto masked) {
      constexpr bool kMasked = decltype(masked)::value;
#pragma unroll
      for (int n = 0; n < kRows / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int c = n * 8 + col_in_tile + e;  // the query of the tile
          const int query_keys = kMasked ? visible_keys(p, i0 + c) : 0;
          const float lse_c = lse_t[c] * kLog2e, delta_c = delta_t[c];
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            float prob = fast_exp2(fmaf(st[n][2 * r + e], p.scale_log2, -lse_c));
            if (kMasked && key0 + quad_row + 8 * r >= query_keys) prob = 0.f;
            st[n][2 * r + e] = prob;
            dpt[n][2 * r + e] = prob * (dpt[n][2 * r + e] - delta_c);
          }
        }
    };
    if (visible_keys(p, i0) < key0 + 16)
      probs_and_d_scores(std::true_type{});
    else
      probs_and_d_scores(std::false_type{});
    mma_acc_times_cols(acc_v, st, dot, D::kLdV, p.v_dim);
    mma_acc_times_cols(acc_k, dpt, qt, D::kLdQK, p.qk_dim);
  }

  __pipeline_wait_prior(0);
  __syncthreads();
  const int warp_rows = max(0, min(16, cols - row0));
  const float k_factor[2] = {p.scale, p.scale}, v_factor[2] = {1.f, 1.f};
  store_rows(acc_k, k_factor, ks, D::kLdQK, row0, dk + b * p.kb + g * p.kh + key0 * p.kt, p.kt,
             warp_rows, p.qk_dim, p.vec_dk);
  store_rows(acc_v, v_factor, vs, D::kLdV, row0, dv + b * p.vb + g * p.vh + key0 * p.vt, p.vt,
             warp_rows, p.v_dim, p.vec_dv);
}

// Calls f(HeadDims<...>{}) with the smallest instantiation that holds the problem's head dims.
template <class F>
void with_head_dims(const FlashParams& p, F&& f) {
  if (p.qk_dim <= 64 && p.v_dim <= 64)
    f(HeadDims<64, 64>{});
  else if (p.qk_dim <= 96 && p.v_dim <= 64)
    f(HeadDims<96, 64>{});
  else if (p.qk_dim <= 128 && p.v_dim <= 128)
    f(HeadDims<128, 128>{});
  else
    f(HeadDims<192, 128>{});
}

// Calls f(std::integral_constant<int, I>{}) for the I == index among 0 .. N - 1.
template <class F, size_t... I>
void with_index(int index, F&& f, std::index_sequence<I...>) {
  ((index == static_cast<int>(I) ? f(std::integral_constant<int, static_cast<int>(I)>{}) : void()),
   ...);
}

// Launches a kernel of tile shape S: its dynamic shared memory allowed first.
template <class S, typename Kernel, typename... Args>
void launch_shape(Kernel* kernel, dim3 grid, cudaStream_t stream, Args... args) {
  allow_shared_memory(kernel, S::kSmemBytes);
  kernel<<<grid, S::kThreads, S::kSmemBytes, stream>>>(args...);
  LATTE_CUDA_CHECK_LAUNCH();
}

// The shapes of the variants of kForwardTiles, kDkDvTiles and kDqTiles at head dims D.
template <class D, size_t I>
using ForwardVariant = ForwardShape<D, kForwardTiles[I].warps, kForwardTiles[I].tile,
                                    kForwardTiles[I].min_blocks, kForwardTiles[I].pipelined>;
template <class D, size_t I>
using DkDvVariant = DkDvShape<D, kDkDvTiles[I].warps, kDkDvTiles[I].tile, kDkDvTiles[I].min_blocks>;
template <class D, size_t I>
using DqVariant =
    DqShape<D, kDqTiles[I].warps, kDqTiles[I].tile, kDqTiles[I].min_blocks, kDqTiles[I].pipelined>;

// How `kernel`, launched as shape S, occupies an SM of the current device.
template <class S, typename Kernel>
FlashVariantOccupancy occupancy(Kernel* kernel) {
  allow_shared_memory(kernel, S::kSmemBytes);
  cudaFuncAttributes attributes{};
  LATTE_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  int blocks = 0;
  LATTE_CUDA_CHECK(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, S::kThreads, S::kSmemBytes));
  return {attributes.numRegs, blocks, blocks * S::kWarps};
}

template <class D, size_t... I>
std::vector<FlashVariantOccupancy> forward_occupancy(std::index_sequence<I...>) {
  return {occupancy<ForwardVariant<D, I>>(mma_forward_kernel<D, ForwardVariant<D, I>>)...};
}
template <class D, size_t... I>
std::vector<FlashVariantOccupancy> dkdv_occupancy(std::index_sequence<I...>) {
  return {occupancy<DkDvVariant<D, I>>(mma_backward_dkdv_kernel<D, DkDvVariant<D, I>>)...};
}
template <class D, size_t... I>
std::vector<FlashVariantOccupancy> dq_occupancy(std::index_sequence<I...>) {
  return {occupancy<DqVariant<D, I>>(mma_backward_dq_kernel<D, DqVariant<D, I>>)...};
}

}  // namespace

FlashTileOccupancy mma_tile_occupancy(int qk_dim, int v_dim) {
  FlashParams p;
  p.qk_dim = qk_dim;
  p.v_dim = v_dim;
  FlashTileOccupancy result;
  with_head_dims(p, [&](auto dims) {
    using D = decltype(dims);
    result.forward = forward_occupancy<D>(std::make_index_sequence<std::size(kForwardTiles)>{});
    result.dkdv = dkdv_occupancy<D>(std::make_index_sequence<std::size(kDkDvTiles)>{});
    result.dq = dq_occupancy<D>(std::make_index_sequence<std::size(kDqTiles)>{});
  });
  return result;
}

void mma_flash_forward(const FlashParams& p, int64_t batch, const bf16_t* q, const bf16_t* k,
                       const bf16_t* v, bf16_t* o, float* lse, int variant, cudaStream_t stream,
                       const char* op) {
  with_head_dims(p, [&](auto dims) {
    using D = decltype(dims);
    const auto launch = [&](auto index) {
      using S = ForwardVariant<D, decltype(index)::value>;
      FlashParams lp = p;
      const dim3 grid = tile_grid(lp, ceil_div(p.q_len, S::kRows), p.q_heads, batch,
                                  pair_bytes_of_keys(p, 2), op);
      launch_shape<S>(mma_forward_kernel<D, S>, grid, stream, lp, q, k, v, o, lse);
    };
    with_index(variant, launch, std::make_index_sequence<std::size(kForwardTiles)>{});
  });
}

void mma_flash_backward(const FlashParams& p, int64_t batch, int64_t kv_heads, const bf16_t* q,
                        const bf16_t* k, const bf16_t* v, const bf16_t* d_o, const float* lse,
                        const float* delta, bf16_t* dq, bf16_t* dk, bf16_t* dv, int dkdv_variant,
                        int dq_variant, cudaStream_t stream, const char* op) {
  with_head_dims(p, [&](auto dims) {
    using D = decltype(dims);
    const auto launch_dkdv = [&](auto index) {
      using S = DkDvVariant<D, decltype(index)::value>;
      FlashParams lp = p;
      const dim3 grid = tile_grid(lp, ceil_div(p.kv_len, S::kKeys), kv_heads, batch,
                                  pair_bytes_of_queries(p, 2), op);
      launch_shape<S>(mma_backward_dkdv_kernel<D, S>, grid, stream, lp, q, k, v, d_o, lse, delta,
                      dk, dv);
    };
    with_index(dkdv_variant, launch_dkdv, std::make_index_sequence<std::size(kDkDvTiles)>{});
    const auto launch_dq = [&](auto index) {
      using S = DqVariant<D, decltype(index)::value>;
      FlashParams lp = p;
      const dim3 grid = tile_grid(lp, ceil_div(p.q_len, S::kRows), p.q_heads, batch,
                                  pair_bytes_of_keys(p, 2), op);
      launch_shape<S>(mma_backward_dq_kernel<D, S>, grid, stream, lp, q, k, v, d_o, lse, delta, dq);
    };
    with_index(dq_variant, launch_dq, std::make_index_sequence<std::size(kDqTiles)>{});
  });
}

}  // namespace latte::kernels::cuda::detail
