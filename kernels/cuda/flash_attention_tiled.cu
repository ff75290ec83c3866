// The shared-memory tile kernels of FlashAttention-2 (see flash_attention.cuh for the algorithm
// and flash_attention_common.cuh for where they are used): fp32, and bf16 head dims beyond the
// tensor-core kernels'.
//
// How they compute. Every tile lives in shared memory, head dims zero-padded to a multiple of 16,
// so one kernel per element type serves every qk_dim and v_dim up to 256 (independently). Tile
// products are block-level GEMMs whose 16x16 output fragments are spread over the warps:
// tensor-core WMMA (bf16 in, fp32 accumulate) for bf16 and plain fp32 FMAs for float. Tile sizes
// are chosen at run time, the largest that fits the GPU's shared memory (64x64 down to 16x16).
// - forward: one block per (query tile, query head, batch), online softmax with the row max, row
//   sum and rescale factor in shared memory and the fp32 output accumulator rescaled in place;
// - backward: one block per (key tile, kv head, batch) accumulates dk and dv over every query
//   tile of its GQA group, then one block per (query tile, query head, batch) accumulates dq.
#include <mma.h>

#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention_common.cuh"

namespace latte::kernels::cuda::detail {

namespace {

constexpr int kThreads = 512;  // 16 warps per block: measured best of 128/256/512/1024 on an H200

// Shared-memory regions of the three kernels (each kernel uses a subset).
enum Region {
  kQ,     // query tile, T
  kK,     // key tile, T
  kV,     // value tile, T
  kDO,    // d_o tile, T
  kS,     // scores (forward, dq) or scores^T (dk/dv), fp32
  kDP,    // d probs (dq) or d probs^T (dk/dv), fp32
  kP,     // probs (forward) or probs^T (dk/dv), T: the A operand of the next product
  kDS,    // d scores (dq) or d scores^T (dk/dv), T
  kAccQ,  // fp32 accumulator with qk columns: dq or dk
  kAccV,  // fp32 accumulator with v columns: o or dv
  kRowA,  // per query row: running max (forward) or lse * log2(e) (backward)
  kRowB,  // per query row: running sum (forward) or delta (backward)
  kRowC,  // per query row: the forward's rescale factor
  kRegions
};

// The problem plus the tile sizes and shared-memory layout chosen for one kernel.
struct TiledParams : FlashParams {
  int qk_pad = 0, v_pad = 0;                  // head dims rounded up to a multiple of 16
  int br = 0, bc = 0;                         // query rows and keys per tile
  int off[kRegions] = {}, ld[kRegions] = {};  // byte offsets, leading dims (elements)
};

template <typename V>
__device__ __forceinline__ V* region(unsigned char* smem, const TiledParams& p, Region r) {
  return reinterpret_cast<V*>(smem + p.off[r]);
}

// C[M, N] (+)= A[M, K] op(B) on shared-memory tiles, M, N, K multiples of 16. A is row-major;
// op(B) is B^T for B stored [N, K] (TransB) or B stored [K, N]. The 16x16 output fragments are
// dealt to the warps round-robin; each is read (when accumulating), updated over all of K in
// order and written once. bf16: tensor-core WMMA with fp32 accumulation; float: fp32 FMAs.
template <bool TransB, typename T>
__device__ void block_gemm(float* c, int ldc, const T* a, int lda, const T* b, int ldb, int m,
                           int n, int k, bool accumulate) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    namespace wmma = nvcuda::wmma;
    using BLayout = std::conditional_t<TransB, wmma::col_major, wmma::row_major>;
    const int warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
    const int mt = m / 16, nt = n / 16;
    for (int f = warp; f < mt * nt; f += warps) {
      const int mi = f / nt, ni = f % nt;
      float* cf = c + mi * 16 * ldc + ni * 16;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      if (accumulate)
        wmma::load_matrix_sync(acc, cf, ldc, wmma::mem_row_major);
      else
        wmma::fill_fragment(acc, 0.f);
      for (int kk = 0; kk < k; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, BLayout> fb;
        wmma::load_matrix_sync(fa, a + mi * 16 * lda + kk, lda);
        // col_major B: element (kk', n') at ptr[n' * ldb + kk'], i.e. B stored [N, K].
        wmma::load_matrix_sync(fb, TransB ? b + ni * 16 * ldb + kk : b + kk * ldb + ni * 16, ldb);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(cf, acc, ldc, wmma::mem_row_major);
    }
  } else {
    for (int idx = threadIdx.x; idx < m * n; idx += blockDim.x) {
      const int r = idx / n, col = idx % n;
      const float* ar = a + r * lda;
      float sum = accumulate ? c[r * ldc + col] : 0.f;
      if constexpr (TransB) {
        const float* bc = b + col * ldb;
        for (int kk = 0; kk < k; ++kk) sum += ar[kk] * bc[kk];
      } else {
        for (int kk = 0; kk < k; ++kk) sum += ar[kk] * b[kk * ldb + col];
      }
      c[r * ldc + col] = sum;
    }
  }
}

// Zeroes a [rows, cols] fp32 shared tile.
__device__ void zero_tile(float* t, int ld, int rows, int cols) {
  for (int idx = threadIdx.x; idx < rows * cols; idx += blockDim.x)
    t[(idx / cols) * ld + idx % cols] = 0.f;
}

// Writes rows [0, rows) and columns [0, cols) of an fp32 tile times `factor` (divided by the
// row's `divisor` when given, 0 where it is not positive) to a strided global operand.
template <typename T>
__device__ void store_tile(T* dst, int64_t row_stride, const float* t, int ld, int rows, int cols,
                           float factor, const float* divisor) {
  for (int idx = threadIdx.x; idx < rows * cols; idx += blockDim.x) {
    const int r = idx / cols, c = idx % cols;
    float x = t[r * ld + c] * factor;
    if (divisor) x = divisor[r] > 0.f ? x / divisor[r] : 0.f;
    dst[r * row_stride + c] = from_float<T>(x);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    flash_forward_kernel(const TiledParams p, const T* __restrict__ q, const T* __restrict__ k,
                         const T* __restrict__ v, T* __restrict__ o, float* __restrict__ lse) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* qs = region<T>(smem, p, kQ);
  T* ks = region<T>(smem, p, kK);
  T* vs = region<T>(smem, p, kV);
  float* s = region<float>(smem, p, kS);
  T* ps = region<T>(smem, p, kP);
  float* acc = region<float>(smem, p, kAccV);
  float* row_max = region<float>(smem, p, kRowA);
  float* row_sum = region<float>(smem, p, kRowB);
  float* alpha = region<float>(smem, p, kRowC);

  const QueryTile tile = query_tile(p, p.br);
  const int i0 = tile.i0, rows = tile.rows, h = tile.h, b = tile.b, g = tile.g;
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp, warps = blockDim.x / kWarp;
  const T* kg = k + b * p.kb + g * p.kh;
  const T* vg = v + b * p.vb + g * p.vh;

  load_tile(qs, p.ld[kQ], p.br, p.qk_pad, q + b * p.qb + h * p.qh + i0 * p.qt, p.qt, rows, p.qk_dim,
            p.vec_q);
  zero_tile(acc, p.ld[kAccV], p.br, p.v_pad);
  for (int r = threadIdx.x; r < p.br; r += blockDim.x) {
    row_max[r] = -INFINITY;
    row_sum[r] = 0.f;
  }
  // Key tiles past the last key the tile's last row sees are skipped (causal).
  const int kv_end = visible_keys(p, i0 + rows - 1);
  for (int j0 = 0; j0 < kv_end; j0 += p.bc) {
    const int cols = min(p.bc, p.kv_len - j0);
    __syncthreads();  // the previous step is done with ks, vs and ps
    load_tile(ks, p.ld[kK], p.bc, p.qk_pad, kg + j0 * p.kt, p.kt, cols, p.qk_dim, p.vec_k);
    load_tile(vs, p.ld[kV], p.bc, p.v_pad, vg + j0 * p.vt, p.vt, cols, p.v_dim, p.vec_v);
    __syncthreads();
    block_gemm<true>(s, p.ld[kS], qs, p.ld[kQ], ks, p.ld[kK], p.br, p.bc, p.qk_pad, false);
    __syncthreads();
    // Online softmax, one warp per row, in the exp2 domain: p = 2^(s * scale * log2 e - max).
    for (int r = warp; r < p.br; r += warps) {
      const int n = i0 + r < p.q_len ? min(max(visible_keys(p, i0 + r) - j0, 0), p.bc) : 0;
      const float* srow = s + r * p.ld[kS];
      T* prow = ps + r * p.ld[kP];
      float mx = -INFINITY;
      for (int c = lane; c < n; c += kWarp) mx = fmaxf(mx, srow[c] * p.scale_log2);
      mx = warp_max(mx);
      const float m_old = row_max[r], m_new = fmaxf(m_old, mx);
      float sum = 0.f;
      for (int c = lane; c < p.bc; c += kWarp) {
        const float e = c < n ? exp2f(srow[c] * p.scale_log2 - m_new) : 0.f;
        prow[c] = from_float<T>(e);
        sum += e;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float a = m_old == -INFINITY ? 0.f : exp2f(m_old - m_new);
        row_sum[r] = row_sum[r] * a + sum;
        row_max[r] = m_new;
        alpha[r] = a;
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < p.br * p.v_pad; idx += blockDim.x) {
      const int r = idx / p.v_pad;
      acc[r * p.ld[kAccV] + idx % p.v_pad] *= alpha[r];
    }
    __syncthreads();
    block_gemm<false>(acc, p.ld[kAccV], ps, p.ld[kP], vs, p.ld[kV], p.br, p.v_pad, p.bc, true);
  }
  __syncthreads();
  store_tile(o + b * p.ob + h * p.oh + i0 * p.ot, p.ot, acc, p.ld[kAccV], rows, p.v_dim, 1.f,
             row_sum);
  float* lse_t = lse + (static_cast<int64_t>(b) * p.q_heads + h) * p.q_len + i0;
  for (int r = threadIdx.x; r < rows; r += blockDim.x)
    lse_t[r] = row_sum[r] > 0.f ? row_max[r] * kLn2 + logf(row_sum[r]) : -INFINITY;
}

// delta[b, h, i] = sum_c d_o[b, i, h, c] * o[b, i, h, c] in fp32, one warp per row.

// memory; rows past the end get 0 (they are masked).
__device__ void load_row_stats(const TiledParams& p, const float* lse, const float* delta,
                               int64_t bh, int i0, int rows, float* lse_s, float* delta_s) {
  for (int r = threadIdx.x; r < p.br; r += blockDim.x) {
    const int64_t at = bh * p.q_len + i0 + r;
    lse_s[r] = r < rows ? lse[at] * kLog2e : 0.f;
    delta_s[r] = r < rows ? delta[at] : 0.f;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    flash_backward_dq_kernel(const TiledParams p, const T* __restrict__ q, const T* __restrict__ k,
                             const T* __restrict__ v, const T* __restrict__ d_o,
                             const float* __restrict__ lse, const float* __restrict__ delta,
                             T* __restrict__ dq) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* qs = region<T>(smem, p, kQ);
  T* dos = region<T>(smem, p, kDO);
  T* ks = region<T>(smem, p, kK);
  T* vs = region<T>(smem, p, kV);
  float* s = region<float>(smem, p, kS);
  float* dp = region<float>(smem, p, kDP);
  T* ds = region<T>(smem, p, kDS);
  float* acc = region<float>(smem, p, kAccQ);
  float* lse_s = region<float>(smem, p, kRowA);
  float* delta_s = region<float>(smem, p, kRowB);

  const QueryTile tile = query_tile(p, p.br);
  const int i0 = tile.i0, rows = tile.rows, h = tile.h, b = tile.b, g = tile.g;
  const T* kg = k + b * p.kb + g * p.kh;
  const T* vg = v + b * p.vb + g * p.vh;

  load_tile(qs, p.ld[kQ], p.br, p.qk_pad, q + b * p.qb + h * p.qh + i0 * p.qt, p.qt, rows, p.qk_dim,
            p.vec_q);
  load_tile(dos, p.ld[kDO], p.br, p.v_pad, d_o + b * p.ob + h * p.oh + i0 * p.ot, p.ot, rows,
            p.v_dim, p.vec_o);
  zero_tile(acc, p.ld[kAccQ], p.br, p.qk_pad);
  load_row_stats(p, lse, delta, static_cast<int64_t>(b) * p.q_heads + h, i0, rows, lse_s, delta_s);
  const int kv_end = visible_keys(p, i0 + rows - 1);
  for (int j0 = 0; j0 < kv_end; j0 += p.bc) {
    const int cols = min(p.bc, p.kv_len - j0);
    __syncthreads();
    load_tile(ks, p.ld[kK], p.bc, p.qk_pad, kg + j0 * p.kt, p.kt, cols, p.qk_dim, p.vec_k);
    load_tile(vs, p.ld[kV], p.bc, p.v_pad, vg + j0 * p.vt, p.vt, cols, p.v_dim, p.vec_v);
    __syncthreads();
    block_gemm<true>(s, p.ld[kS], qs, p.ld[kQ], ks, p.ld[kK], p.br, p.bc, p.qk_pad, false);
    block_gemm<true>(dp, p.ld[kDP], dos, p.ld[kDO], vs, p.ld[kV], p.br, p.bc, p.v_pad, false);
    __syncthreads();
    // d scores = probs * (d probs - delta), probs recomputed from the saved logsumexp.
    for (int idx = threadIdx.x; idx < p.br * p.bc; idx += blockDim.x) {
      const int r = idx / p.bc, c = idx % p.bc;
      const int n = i0 + r < p.q_len ? visible_keys(p, i0 + r) - j0 : 0;
      float d = 0.f;
      if (c < n) {
        const float prob = exp2f(s[r * p.ld[kS] + c] * p.scale_log2 - lse_s[r]);
        d = prob * (dp[r * p.ld[kDP] + c] - delta_s[r]);
      }
      ds[r * p.ld[kDS] + c] = from_float<T>(d);
    }
    __syncthreads();
    block_gemm<false>(acc, p.ld[kAccQ], ds, p.ld[kDS], ks, p.ld[kK], p.br, p.qk_pad, p.bc, true);
  }
  __syncthreads();
  store_tile(dq + b * p.qb + h * p.qh + i0 * p.qt, p.qt, acc, p.ld[kAccQ], rows, p.qk_dim, p.scale,
             nullptr);
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    flash_backward_dkdv_kernel(const TiledParams p, const T* __restrict__ q,
                               const T* __restrict__ k, const T* __restrict__ v,
                               const T* __restrict__ d_o, const float* __restrict__ lse,
                               const float* __restrict__ delta, T* __restrict__ dk,
                               T* __restrict__ dv) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* ks = region<T>(smem, p, kK);
  T* vs = region<T>(smem, p, kV);
  T* qs = region<T>(smem, p, kQ);
  T* dos = region<T>(smem, p, kDO);
  float* st = region<float>(smem, p, kS);
  float* dpt = region<float>(smem, p, kDP);
  T* pt = region<T>(smem, p, kP);
  T* dst = region<T>(smem, p, kDS);
  float* acc_k = region<float>(smem, p, kAccQ);
  float* acc_v = region<float>(smem, p, kAccV);
  float* lse_s = region<float>(smem, p, kRowA);
  float* delta_s = region<float>(smem, p, kRowB);

  const KeyBlock kb = key_block(p, p.bc);
  const int j0 = kb.j0, g = kb.g, b = kb.b;
  const int cols = min(p.bc, p.kv_len - j0);
  T* dk_t = dk + b * p.kb + g * p.kh + j0 * p.kt;
  T* dv_t = dv + b * p.vb + g * p.vh + j0 * p.vt;
  load_tile(ks, p.ld[kK], p.bc, p.qk_pad, k + b * p.kb + g * p.kh + j0 * p.kt, p.kt, cols, p.qk_dim,
            p.vec_k);
  load_tile(vs, p.ld[kV], p.bc, p.v_pad, v + b * p.vb + g * p.vh + j0 * p.vt, p.vt, cols, p.v_dim,
            p.vec_v);
  zero_tile(acc_k, p.ld[kAccQ], p.bc, p.qk_pad);
  zero_tile(acc_v, p.ld[kAccV], p.bc, p.v_pad);
  // Query tiles start at the first query that sees this key tile (causal).
  const int i_start = first_query_seeing(p, j0);
  for (int h = g * p.group; h < (g + 1) * p.group; ++h) {
    for (int i0 = i_start; i0 < p.q_len; i0 += p.br) {
      const int rows = min(p.br, p.q_len - i0);
      __syncthreads();  // the previous step is done with qs, dos and the row stats
      load_tile(qs, p.ld[kQ], p.br, p.qk_pad, q + b * p.qb + h * p.qh + i0 * p.qt, p.qt, rows,
                p.qk_dim, p.vec_q);
      load_tile(dos, p.ld[kDO], p.br, p.v_pad, d_o + b * p.ob + h * p.oh + i0 * p.ot, p.ot, rows,
                p.v_dim, p.vec_o);
      load_row_stats(p, lse, delta, static_cast<int64_t>(b) * p.q_heads + h, i0, rows, lse_s,
                     delta_s);
      __syncthreads();
      // Transposed tiles, key rows: scores^T = k q^T, d probs^T = v d_o^T.
      block_gemm<true>(st, p.ld[kS], ks, p.ld[kK], qs, p.ld[kQ], p.bc, p.br, p.qk_pad, false);
      block_gemm<true>(dpt, p.ld[kDP], vs, p.ld[kV], dos, p.ld[kDO], p.bc, p.br, p.v_pad, false);
      __syncthreads();
      for (int idx = threadIdx.x; idx < p.bc * p.br; idx += blockDim.x) {
        const int c = idx / p.br, r = idx % p.br;  // key c of the tile, query r of the tile
        float prob = 0.f, d = 0.f;
        if (r < rows && j0 + c < visible_keys(p, i0 + r)) {
          prob = exp2f(st[c * p.ld[kS] + r] * p.scale_log2 - lse_s[r]);
          d = prob * (dpt[c * p.ld[kDP] + r] - delta_s[r]);
        }
        pt[c * p.ld[kP] + r] = from_float<T>(prob);
        dst[c * p.ld[kDS] + r] = from_float<T>(d);
      }
      __syncthreads();
      block_gemm<false>(acc_v, p.ld[kAccV], pt, p.ld[kP], dos, p.ld[kDO], p.bc, p.v_pad, p.br,
                        true);
      block_gemm<false>(acc_k, p.ld[kAccQ], dst, p.ld[kDS], qs, p.ld[kQ], p.bc, p.qk_pad, p.br,
                        true);
    }
  }
  __syncthreads();
  store_tile(dk_t, p.kt, acc_k, p.ld[kAccQ], cols, p.qk_dim, p.scale, nullptr);
  store_tile(dv_t, p.vt, acc_v, p.ld[kAccV], cols, p.v_dim, 1.f, nullptr);
}

// ---- host side ----

enum class Kernel { kForward, kBackwardDq, kBackwardDkDv };

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

TiledParams tiled_params(const FlashParams& problem) {
  TiledParams p;
  static_cast<FlashParams&>(p) = problem;
  p.qk_pad = static_cast<int>(round_up(p.qk_dim, 16));
  p.v_pad = static_cast<int>(round_up(p.v_dim, 16));
  return p;
}

// Fills the shared-memory layout of `kernel` for tiles of br query rows and bc keys and returns
// its size in bytes. Tiles of T get 16 bytes of row padding for bf16 (WMMA needs leading dims that
// are multiples of 8 elements; the skew also spreads the rows over the banks), fp32 tiles 16 bytes
// too; the float path pads by one element.
template <typename T>
int64_t plan_layout(TiledParams& p, Kernel kernel, int br, int bc) {
  const bool bf = sizeof(T) == 2;
  const int pad_t = bf ? 8 : 1, pad_f = bf ? 4 : 1;
  p.br = br;
  p.bc = bc;
  int64_t bytes = 0;
  auto add = [&](Region r, int64_t rows, int ld, int64_t elem) {
    p.off[r] = static_cast<int>(bytes);
    p.ld[r] = ld;
    bytes += round_up(rows * ld * elem, 128);
  };
  const int64_t t = sizeof(T), f = sizeof(float);
  switch (kernel) {
    case Kernel::kForward:
      add(kQ, br, p.qk_pad + pad_t, t);
      add(kK, bc, p.qk_pad + pad_t, t);
      add(kV, bc, p.v_pad + pad_t, t);
      add(kS, br, bc + pad_f, f);
      add(kP, br, bc + pad_t, t);
      add(kAccV, br, p.v_pad + pad_f, f);
      add(kRowA, 1, br, f);
      add(kRowB, 1, br, f);
      add(kRowC, 1, br, f);
      break;
    case Kernel::kBackwardDq:
      add(kQ, br, p.qk_pad + pad_t, t);
      add(kDO, br, p.v_pad + pad_t, t);
      add(kK, bc, p.qk_pad + pad_t, t);
      add(kV, bc, p.v_pad + pad_t, t);
      add(kS, br, bc + pad_f, f);
      add(kDP, br, bc + pad_f, f);
      add(kDS, br, bc + pad_t, t);
      add(kAccQ, br, p.qk_pad + pad_f, f);
      add(kRowA, 1, br, f);
      add(kRowB, 1, br, f);
      break;
    case Kernel::kBackwardDkDv:
      add(kK, bc, p.qk_pad + pad_t, t);
      add(kV, bc, p.v_pad + pad_t, t);
      add(kQ, br, p.qk_pad + pad_t, t);
      add(kDO, br, p.v_pad + pad_t, t);
      add(kS, bc, br + pad_f, f);
      add(kDP, bc, br + pad_f, f);
      add(kP, bc, br + pad_t, t);
      add(kDS, bc, br + pad_t, t);
      add(kAccQ, bc, p.qk_pad + pad_f, f);
      add(kAccV, bc, p.v_pad + pad_f, f);
      add(kRowA, 1, br, f);
      add(kRowB, 1, br, f);
      break;
  }
  return bytes;
}

// Picks the largest tiles whose layout fits the device's shared memory per block and returns the
// layout's size.
template <typename T>
int64_t choose_tiles(TiledParams& p, Kernel kernel, const char* op) {
  int device = 0, max_bytes = 0;
  LATTE_CUDA_CHECK(cudaGetDevice(&device));
  LATTE_CUDA_CHECK(
      cudaDeviceGetAttribute(&max_bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  constexpr int kTiles[][2] = {{64, 64}, {64, 32}, {32, 32}, {16, 16}};
  int64_t bytes = 0;
  for (const auto& tile : kTiles) {
    // dk/dv tiles are key rows by query columns: prefer the larger tile on the keys.
    const int br = kernel == Kernel::kBackwardDkDv ? tile[1] : tile[0];
    const int bc = kernel == Kernel::kBackwardDkDv ? tile[0] : tile[1];
    bytes = plan_layout<T>(p, kernel, br, bc);
    if (bytes <= max_bytes) break;
  }
  LATTE_CHECK(bytes <= max_bytes) << op << ": head dims qk " << p.qk_dim << ", v " << p.v_dim
                                  << " need " << bytes << " bytes of shared memory, the device has "
                                  << max_bytes << " per block";
  return bytes;
}

}  // namespace

template <typename T>
void tiled_flash_forward(const FlashParams& problem, int64_t batch, const T* q, const T* k,
                         const T* v, T* o, float* lse, cudaStream_t stream, const char* op) {
  TiledParams p = tiled_params(problem);
  const int64_t smem = choose_tiles<T>(p, Kernel::kForward, op);
  allow_shared_memory(flash_forward_kernel<T>, smem);
  const dim3 grid =
      tile_grid(p, ceil_div(p.q_len, p.br), p.q_heads, batch, pair_bytes_of_keys(p, sizeof(T)), op);
  flash_forward_kernel<T><<<grid, kThreads, smem, stream>>>(p, q, k, v, o, lse);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void tiled_flash_backward(const FlashParams& problem, int64_t batch, int64_t kv_heads, const T* q,
                          const T* k, const T* v, const T* d_o, const float* lse,
                          const float* delta, T* dq, T* dk, T* dv, cudaStream_t stream,
                          const char* op) {
  TiledParams p = tiled_params(problem);
  const int64_t smem_kv = choose_tiles<T>(p, Kernel::kBackwardDkDv, op);
  allow_shared_memory(flash_backward_dkdv_kernel<T>, smem_kv);
  const dim3 grid_kv = tile_grid(p, ceil_div(p.kv_len, p.bc), kv_heads, batch,
                                 pair_bytes_of_queries(p, sizeof(T)), op);
  flash_backward_dkdv_kernel<T>
      <<<grid_kv, kThreads, smem_kv, stream>>>(p, q, k, v, d_o, lse, delta, dk, dv);
  LATTE_CUDA_CHECK_LAUNCH();

  const int64_t smem_q = choose_tiles<T>(p, Kernel::kBackwardDq, op);
  allow_shared_memory(flash_backward_dq_kernel<T>, smem_q);
  const dim3 grid_q =
      tile_grid(p, ceil_div(p.q_len, p.br), p.q_heads, batch, pair_bytes_of_keys(p, sizeof(T)), op);
  flash_backward_dq_kernel<T>
      <<<grid_q, kThreads, smem_q, stream>>>(p, q, k, v, d_o, lse, delta, dq);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_TILED_FLASH(T)                                                                      \
  template void tiled_flash_forward<T>(const FlashParams&, int64_t, const T*, const T*, const T*, \
                                       T*, float*, cudaStream_t, const char*);                    \
  template void tiled_flash_backward<T>(const FlashParams&, int64_t, int64_t, const T*, const T*, \
                                        const T*, const T*, const float*, const float*, T*, T*,   \
                                        T*, cudaStream_t, const char*);
LATTE_TILED_FLASH(float)
LATTE_TILED_FLASH(__nv_bfloat16)
#undef LATTE_TILED_FLASH

}  // namespace latte::kernels::cuda::detail
