// The entry points of FlashAttention-2 on CUDA (flash_attention.cuh): validate the problem, put
// it in kernel form and send bf16 problems whose head dims the tensor-core kernels take to
// flash_attention_mma.cu, everything else (fp32, larger head dims) to flash_attention_tiled.cu.
// Also the backward's first pass, delta = rowsum(d_o * o) per query row in fp32: a group of lanes
// per row, each lane reading 16-byte groups of both rows when their starts allow it.
#include "kernels/cuda/flash_attention.cuh"

#include <iterator>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/flash_attention_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kDeltaThreads = 256;

// delta[b, h, i] = sum_c d_o[b, i, h, c] * o[b, i, h, c] in fp32. A row takes `lanes` lanes of a
// warp (a power of two: each warp holds 32 / lanes rows); lane l reads elements [l N, l N + N),
// then [(l + lanes) N, ...), ... of both rows (N = kPackWidth<T> as 16-byte groups when `packed`,
// else N = 1), and the lanes' sums meet in a fixed shuffle tree.
template <typename T, int N>
__global__ void __launch_bounds__(kDeltaThreads)
    flash_delta_kernel(const FlashParams p, int64_t n_rows, int lanes, const T* __restrict__ o,
                       const T* __restrict__ d_o, float* __restrict__ delta) {
  const int rows_per_block = kDeltaThreads / lanes, lane = threadIdx.x % lanes;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * rows_per_block + threadIdx.x / lanes;
  float sum = 0.f;
  if (row < n_rows) {
    const int64_t bh = row / p.q_len, i = row % p.q_len, b = bh / p.q_heads, h = bh % p.q_heads;
    const int64_t offset = b * p.ob + h * p.oh + i * p.ot;
    for (int c = lane * N; c < p.v_dim; c += lanes * N) {
      if (N > 1 && c + N <= p.v_dim) {
        const Vec<T, N> x = load_vec<N>(o + offset + c), dx = load_vec<N>(d_o + offset + c);
#pragma unroll
        for (int e = 0; e < N; ++e) sum += to_float(dx.v[e]) * to_float(x.v[e]);
      } else {
        for (int e = 0; e < N && c + e < p.v_dim; ++e)
          sum += to_float(d_o[offset + c + e]) * to_float(o[offset + c + e]);
      }
    }
  }
  for (int step = lanes / 2; step > 0; step /= 2) sum += __shfl_xor_sync(kFullMask, sum, step);
  if (row < n_rows && lane == 0) delta[row] = sum;
}

// Whether 16-byte accesses of T are aligned at every row start of an operand.
template <typename T>
bool vector_loads(const void* ptr, const AttentionLayout& l) {
  constexpr int64_t kVec = 16 / sizeof(T);
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && l.batch_stride % kVec == 0 &&
         l.token_stride % kVec == 0 && l.head_stride % kVec == 0;
}

template <typename T>
FlashParams make_flash_params(const AttentionProblem& pr, const void* q, const void* k,
                              const void* v, const void* o, const void* d_o, const char* op) {
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

template <size_t N>
std::vector<std::string> describe_tiles(const TileVariant (&list)[N], const char* rows,
                                        const char* tile) {
  std::vector<std::string> names;
  for (const TileVariant& t : list)
    names.push_back(
        std::to_string(t.warps) + " warps x 16 " + rows + ", " + std::to_string(t.tile) + tile +
        (t.min_blocks > 1 ? ", registers for " + std::to_string(t.min_blocks) + " blocks per SM"
                          : "") +
        (t.pipelined ? ", pipelined" : ""));
  return names;
}

void check_tiles(const FlashTiles& tiles, const char* op) {
  LATTE_CHECK(tiles.forward >= 0 && tiles.forward < static_cast<int>(std::size(kForwardTiles)) &&
              tiles.dkdv >= 0 && tiles.dkdv < static_cast<int>(std::size(kDkDvTiles)) &&
              tiles.dq >= 0 && tiles.dq < static_cast<int>(std::size(kDqTiles)))
      << op << ": tile variants forward " << tiles.forward << ", dkdv " << tiles.dkdv << ", dq "
      << tiles.dq << " out of range (" << std::size(kForwardTiles) << ", " << std::size(kDkDvTiles)
      << ", " << std::size(kDqTiles) << " variants)";
}

}  // namespace

FlashTileVariants flash_tile_variants() {
  return {describe_tiles(kForwardTiles, "query rows", "-key tiles"),
          describe_tiles(kDkDvTiles, "keys", " query rows per step"),
          describe_tiles(kDqTiles, "query rows", "-key tiles")};
}

FlashTileOccupancy flash_tile_occupancy(int64_t qk_dim, int64_t v_dim) {
  LATTE_CHECK(qk_dim > 0 && v_dim > 0 && qk_dim <= kMmaMaxQkDim && v_dim <= kMmaMaxVDim)
      << "flash_tile_occupancy: head dims qk " << qk_dim << ", v " << v_dim
      << " are not taken by the tensor-core kernels (qk <= " << kMmaMaxQkDim
      << ", v <= " << kMmaMaxVDim << ")";
  return mma_tile_occupancy(static_cast<int>(qk_dim), static_cast<int>(v_dim));
}

template <typename T>
void flash_attention_forward(const AttentionProblem& pr, const T* q, const T* k, const T* v, T* o,
                             float* lse, cudaStream_t stream, const FlashTiles& tiles) {
  constexpr const char* kOp = "cuda flash_attention_forward";
  const FlashParams p = make_flash_params<T>(pr, q, k, v, o, nullptr, kOp);
  check_tiles(tiles, kOp);
  if constexpr (std::is_same_v<T, latte::bf16>) {
    if (mma_kernels_take(p)) {
      mma_flash_forward(p, pr.batch, device_ptr(q), device_ptr(k), device_ptr(v), device_ptr(o),
                        lse, tiles.forward, stream, kOp);
      return;
    }
  }
  tiled_flash_forward(p, pr.batch, device_ptr(q), device_ptr(k), device_ptr(v), device_ptr(o), lse,
                      stream, kOp);
}

int64_t flash_attention_backward_workspace(const AttentionProblem& p) {
  return p.batch * p.q_heads * p.q_len;
}

template <typename T>
void flash_attention_backward(const AttentionProblem& pr, const T* q, const T* k, const T* v,
                              const T* o, const T* d_o, const float* lse, T* dq, T* dk, T* dv,
                              float* workspace, cudaStream_t stream, const FlashTiles& tiles) {
  constexpr const char* kOp = "cuda flash_attention_backward";
  FlashParams p = make_flash_params<T>(pr, q, k, v, o, d_o, kOp);
  check_tiles(tiles, kOp);
  p.vec_dq = vector_loads<T>(dq, pr.q);
  p.vec_dk = vector_loads<T>(dk, pr.k);
  p.vec_dv = vector_loads<T>(dv, pr.v);
  float* delta = workspace;
  const int64_t n_rows = flash_attention_backward_workspace(pr);
  // Lanes per row: enough for one pass over the row's 16-byte groups (or elements), at most a warp.
  constexpr int kPacked = kPackWidth<T>;
  const int per_lane = p.vec_o ? kPacked : 1;
  int lanes = 1;
  while (lanes < kWarp && lanes * per_lane < p.v_dim) lanes *= 2;
  const unsigned blocks = static_cast<unsigned>(ceil_div(n_rows, kDeltaThreads / lanes));
  if (p.vec_o)
    flash_delta_kernel<DeviceType<T>, kPacked><<<blocks, kDeltaThreads, 0, stream>>>(
        p, n_rows, lanes, device_ptr(o), device_ptr(d_o), delta);
  else
    flash_delta_kernel<DeviceType<T>, 1><<<blocks, kDeltaThreads, 0, stream>>>(
        p, n_rows, lanes, device_ptr(o), device_ptr(d_o), delta);
  LATTE_CUDA_CHECK_LAUNCH();
  if constexpr (std::is_same_v<T, latte::bf16>) {
    if (mma_kernels_take(p)) {
      mma_flash_backward(p, pr.batch, pr.kv_heads, device_ptr(q), device_ptr(k), device_ptr(v),
                         device_ptr(d_o), lse, delta, device_ptr(dq), device_ptr(dk),
                         device_ptr(dv), tiles.dkdv, tiles.dq, stream, kOp);
      return;
    }
  }
  tiled_flash_backward(p, pr.batch, pr.kv_heads, device_ptr(q), device_ptr(k), device_ptr(v),
                       device_ptr(d_o), lse, delta, device_ptr(dq), device_ptr(dk), device_ptr(dv),
                       stream, kOp);
}

#define LATTE_FLASH_ATTENTION(T)                                                                   \
  template void flash_attention_forward<T>(const AttentionProblem&, const T*, const T*, const T*,  \
                                           T*, float*, cudaStream_t, const FlashTiles&);           \
  template void flash_attention_backward<T>(const AttentionProblem&, const T*, const T*, const T*, \
                                            const T*, const T*, const float*, T*, T*, T*, float*,  \
                                            cudaStream_t, const FlashTiles&);
LATTE_FLASH_ATTENTION(float)
LATTE_FLASH_ATTENTION(latte::bf16)
#undef LATTE_FLASH_ATTENTION

}  // namespace latte::kernels::cuda
