#include "kernels/cuda/flash_attention.cuh"

#include <cuda_pipeline.h>
#include <mma.h>

#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 512;  // 16 warps per block: measured best of 128/256/512/1024 on an H200
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

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

// Everything a kernel needs to know about the problem and its shared-memory layout, by value.
struct FlashParams {
  int q_heads = 0, group = 0, q_len = 0, kv_len = 0;
  int qk_dim = 0, v_dim = 0, qk_pad = 0, v_pad = 0;
  bool causal = false;
  float scale = 1.f;       // softmax scale
  float scale_log2 = 1.f;  // scale * log2(e): scores in the exp2 domain
  int64_t qb = 0, qt = 0, qh = 0, kb = 0, kt = 0, kh = 0, vb = 0, vt = 0, vh = 0, ob = 0, ot = 0,
          oh = 0;                                                   // element strides
  bool vec_q = false, vec_k = false, vec_v = false, vec_o = false;  // 16-byte global loads allowed
  int br = 0, bc = 0;                                               // query rows and keys per tile
  int off[kRegions] = {}, ld[kRegions] = {};  // byte offsets, leading dims (elements)
};

// Query i attends keys [0, visible_keys(i)) (AttentionProblem::visible_keys).
__device__ __forceinline__ int visible_keys(const FlashParams& p, int i) {
  return p.causal ? min(max(i + p.kv_len - p.q_len + 1, 0), p.kv_len) : p.kv_len;
}
// The first query that attends key j (AttentionProblem::first_query_seeing).
__device__ __forceinline__ int first_query_seeing(const FlashParams& p, int j) {
  return p.causal ? min(max(j - (p.kv_len - p.q_len), 0), p.q_len) : 0;
}

template <typename V>
__device__ __forceinline__ V* region(unsigned char* smem, const FlashParams& p, Region r) {
  return reinterpret_cast<V*>(smem + p.off[r]);
}

// Copies `rows_valid` rows (`row_stride` elements apart, `dim` contiguous elements each) from
// global memory into a [tile_rows, ld] shared tile, zero-filling columns [dim, dim_pad) and rows
// [rows_valid, tile_rows). With `vec` every row start is 16-byte aligned and whole 16-byte
// chunks are loaded at once; for bf16 those go global -> shared by cp.async, all of a thread's
// chunks in flight together (a synchronous load per chunk left each tile load latency-bound).
// Returns once the calling thread's copies have landed; callers __syncthreads() before reading.
template <typename T>
__device__ void load_tile(T* tile, int ld, int tile_rows, int dim_pad, const T* src,
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
  if constexpr (sizeof(T) == 2) {
    __pipeline_commit();
    __pipeline_wait_prior(0);
  }
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
    flash_forward_kernel(const FlashParams p, const T* __restrict__ q, const T* __restrict__ k,
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

  const int q_tiles = (p.q_len + p.br - 1) / p.br;
  const int i0 = (q_tiles - 1 - static_cast<int>(blockIdx.x)) * p.br;  // long causal rows first
  const int h = blockIdx.y, b = blockIdx.z, g = h / p.group;
  const int rows = min(p.br, p.q_len - i0);
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
template <typename T>
__global__ void flash_delta_kernel(const FlashParams p, int64_t n_rows, const T* __restrict__ o,
                                   const T* __restrict__ d_o, float* __restrict__ delta) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= n_rows) return;
  const int lane = threadIdx.x % kWarp;
  const int64_t bh = row / p.q_len, i = row % p.q_len, b = bh / p.q_heads, h = bh % p.q_heads;
  const int64_t offset = b * p.ob + h * p.oh + i * p.ot;
  float sum = 0.f;
  for (int c = lane; c < p.v_dim; c += kWarp)
    sum += to_float(d_o[offset + c]) * to_float(o[offset + c]);
  sum = warp_sum(sum);
  if (lane == 0) delta[row] = sum;
}

// Loads lse (times log2 e) and delta of query rows [i0, i0 + rows) of head (b, h) into shared
// memory; rows past the end get 0 (they are masked).
__device__ void load_row_stats(const FlashParams& p, const float* lse, const float* delta,
                               int64_t bh, int i0, int rows, float* lse_s, float* delta_s) {
  for (int r = threadIdx.x; r < p.br; r += blockDim.x) {
    const int64_t at = bh * p.q_len + i0 + r;
    lse_s[r] = r < rows ? lse[at] * kLog2e : 0.f;
    delta_s[r] = r < rows ? delta[at] : 0.f;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    flash_backward_dq_kernel(const FlashParams p, const T* __restrict__ q, const T* __restrict__ k,
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

  const int q_tiles = (p.q_len + p.br - 1) / p.br;
  const int i0 = (q_tiles - 1 - static_cast<int>(blockIdx.x)) * p.br;
  const int h = blockIdx.y, b = blockIdx.z, g = h / p.group;
  const int rows = min(p.br, p.q_len - i0);
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
    flash_backward_dkdv_kernel(const FlashParams p, const T* __restrict__ q,
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

  const int j0 = blockIdx.x * p.bc, g = blockIdx.y, b = blockIdx.z;
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

// Fills the shared-memory layout of `kernel` for tiles of br query rows and bc keys and returns
// its size in bytes. Tiles of T get 16 bytes of row padding for bf16 (WMMA needs leading dims that
// are multiples of 8 elements; the skew also spreads the rows over the banks), fp32 tiles 16 bytes
// too; the float path pads by one element.
template <typename T>
int64_t plan_layout(FlashParams& p, Kernel kernel, int br, int bc) {
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
int64_t choose_tiles(FlashParams& p, Kernel kernel, const char* op) {
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

// Whether 16-byte loads of T are aligned at every row start of an operand.
template <typename T>
bool vector_loads(const void* ptr, const AttentionLayout& l) {
  constexpr int64_t kVec = 16 / sizeof(T);
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && l.batch_stride % kVec == 0 &&
         l.token_stride % kVec == 0 && l.head_stride % kVec == 0;
}

template <typename T>
FlashParams make_params(const AttentionProblem& pr, const void* q, const void* k, const void* v,
                        const void* o, const void* d_o, const char* op) {
  cpu::check_attention_problem(pr, op);
  LATTE_CHECK(pr.qk_dim <= kFlashMaxHeadDim && pr.v_dim <= kFlashMaxHeadDim)
      << op << ": head dims qk " << pr.qk_dim << ", v " << pr.v_dim << " exceed the supported "
      << kFlashMaxHeadDim;
  LATTE_CHECK(pr.q_heads <= 65535 && pr.batch <= 65535 && pr.q_len < (int64_t(1) << 30) &&
              pr.kv_len < (int64_t(1) << 30))
      << op << ": batch " << pr.batch << ", q_heads " << pr.q_heads << ", q_len " << pr.q_len
      << ", kv_len " << pr.kv_len << " exceed the CUDA grid limits";
  FlashParams p;
  p.q_heads = static_cast<int>(pr.q_heads);
  p.group = static_cast<int>(pr.group_size());
  p.q_len = static_cast<int>(pr.q_len);
  p.kv_len = static_cast<int>(pr.kv_len);
  p.qk_dim = static_cast<int>(pr.qk_dim);
  p.v_dim = static_cast<int>(pr.v_dim);
  p.qk_pad = static_cast<int>(round_up(pr.qk_dim, 16));
  p.v_pad = static_cast<int>(round_up(pr.v_dim, 16));
  p.causal = pr.causal;
  p.scale = static_cast<float>(pr.scale);
  p.scale_log2 = static_cast<float>(pr.scale * 1.4426950408889634);
  p.qb = pr.q.batch_stride, p.qt = pr.q.token_stride, p.qh = pr.q.head_stride;
  p.kb = pr.k.batch_stride, p.kt = pr.k.token_stride, p.kh = pr.k.head_stride;
  p.vb = pr.v.batch_stride, p.vt = pr.v.token_stride, p.vh = pr.v.head_stride;
  p.ob = pr.o.batch_stride, p.ot = pr.o.token_stride, p.oh = pr.o.head_stride;
  p.vec_q = vector_loads<T>(q, pr.q);
  p.vec_k = vector_loads<T>(k, pr.k);
  p.vec_v = vector_loads<T>(v, pr.v);
  p.vec_o = vector_loads<T>(o, pr.o) && (d_o == nullptr || vector_loads<T>(d_o, pr.o));
  return p;
}

template <typename Kernel>
void allow_shared_memory(Kernel* kernel, int64_t bytes) {
  LATTE_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(bytes)));
}

}  // namespace

template <typename T>
void flash_attention_forward(const AttentionProblem& pr, const T* q, const T* k, const T* v, T* o,
                             float* lse, cudaStream_t stream) {
  using D = DeviceType<T>;
  constexpr const char* kOp = "cuda flash_attention_forward";
  FlashParams p = make_params<T>(pr, q, k, v, o, nullptr, kOp);
  const int64_t smem = choose_tiles<T>(p, Kernel::kForward, kOp);
  allow_shared_memory(flash_forward_kernel<D>, smem);
  const dim3 grid(static_cast<unsigned>(ceil_div(pr.q_len, p.br)), p.q_heads,
                  static_cast<unsigned>(pr.batch));
  flash_forward_kernel<D><<<grid, kThreads, smem, stream>>>(p, device_ptr(q), device_ptr(k),
                                                            device_ptr(v), device_ptr(o), lse);
  LATTE_CUDA_CHECK_LAUNCH();
}

int64_t flash_attention_backward_workspace(const AttentionProblem& p) {
  return p.batch * p.q_heads * p.q_len;
}

template <typename T>
void flash_attention_backward(const AttentionProblem& pr, const T* q, const T* k, const T* v,
                              const T* o, const T* d_o, const float* lse, T* dq, T* dk, T* dv,
                              float* workspace, cudaStream_t stream) {
  using D = DeviceType<T>;
  constexpr const char* kOp = "cuda flash_attention_backward";
  FlashParams p = make_params<T>(pr, q, k, v, o, d_o, kOp);
  float* delta = workspace;
  const int64_t n_rows = flash_attention_backward_workspace(pr);
  constexpr int kRowsPerBlock = kThreads / kWarp;
  flash_delta_kernel<D>
      <<<static_cast<unsigned>(ceil_div(n_rows, kRowsPerBlock)), kThreads, 0, stream>>>(
          p, n_rows, device_ptr(o), device_ptr(d_o), delta);
  LATTE_CUDA_CHECK_LAUNCH();

  const int64_t smem_kv = choose_tiles<T>(p, Kernel::kBackwardDkDv, kOp);
  allow_shared_memory(flash_backward_dkdv_kernel<D>, smem_kv);
  const dim3 grid_kv(static_cast<unsigned>(ceil_div(pr.kv_len, p.bc)),
                     static_cast<unsigned>(pr.kv_heads), static_cast<unsigned>(pr.batch));
  flash_backward_dkdv_kernel<D><<<grid_kv, kThreads, smem_kv, stream>>>(
      p, device_ptr(q), device_ptr(k), device_ptr(v), device_ptr(d_o), lse, delta, device_ptr(dk),
      device_ptr(dv));
  LATTE_CUDA_CHECK_LAUNCH();

  const int64_t smem_q = choose_tiles<T>(p, Kernel::kBackwardDq, kOp);
  allow_shared_memory(flash_backward_dq_kernel<D>, smem_q);
  const dim3 grid_q(static_cast<unsigned>(ceil_div(pr.q_len, p.br)), p.q_heads,
                    static_cast<unsigned>(pr.batch));
  flash_backward_dq_kernel<D><<<grid_q, kThreads, smem_q, stream>>>(
      p, device_ptr(q), device_ptr(k), device_ptr(v), device_ptr(d_o), lse, delta, device_ptr(dq));
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_FLASH_ATTENTION(T)                                                                   \
  template void flash_attention_forward<T>(const AttentionProblem&, const T*, const T*, const T*,  \
                                           T*, float*, cudaStream_t);                              \
  template void flash_attention_backward<T>(const AttentionProblem&, const T*, const T*, const T*, \
                                            const T*, const T*, const float*, T*, T*, T*, float*,  \
                                            cudaStream_t);
LATTE_FLASH_ATTENTION(float)
LATTE_FLASH_ATTENTION(latte::bf16)
#undef LATTE_FLASH_ATTENTION

}  // namespace latte::kernels::cuda
