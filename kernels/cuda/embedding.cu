#include "kernels/cuda/embedding.cuh"

#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/vector_access.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;
// The accumulation: blocks of kAccThreads columns (one per thread); each round loads kDepth
// tokens' values before adding them in order.
constexpr int kAccThreads = 128;
constexpr int kDepth = 32;

// The radix sort of token positions by id.
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
constexpr int kSortThreads = kBins;  // thread b of a sort block owns digit b in the scans
constexpr int kSortWarps = kSortThreads / kWarp;
constexpr int kChunk = 1024;                    // tokens per sort block
constexpr int kWarpSpan = kChunk / kSortWarps;  // consecutive tokens per warp when placing
constexpr int kSearchThreads = 256;

// Views of the embedding_backward workspace.
struct BackwardWorkspace {
  int32_t* keys[2];       // [n] each: ids (outside [0, vocab) mapped to vocab), sorted per pass
  int32_t* positions[2];  // [n] each: the token position of each key
  int* chunk_ranks;       // [chunks, kBins]: digit counts of each chunk, then its first ranks
  int32_t* row_start;     // [vocab + 1]: where each id's tokens start in the sorted keys
};

int64_t align(int64_t bytes) {
  return (bytes + 255) / 256 * 256;
}

BackwardWorkspace carve(void* base, int64_t n) {
  char* p = static_cast<char*>(base);
  BackwardWorkspace w;
  for (int b = 0; b < 2; ++b) {
    w.keys[b] = reinterpret_cast<int32_t*>(p);
    p += align(n * sizeof(int32_t));
    w.positions[b] = reinterpret_cast<int32_t*>(p);
    p += align(n * sizeof(int32_t));
  }
  w.chunk_ranks = reinterpret_cast<int*>(p);
  p += align(ceil_div(n, kChunk) * kBins * sizeof(int));
  w.row_start = reinterpret_cast<int32_t*>(p);
  return w;
}

// Sort passes for keys in [0, vocab]: 8 bits each.
int sort_passes(int64_t vocab) {
  int bits = 1;
  while ((vocab >> bits) != 0) ++bits;
  return static_cast<int>(ceil_div(bits, kDigitBits));
}

// out[i, :] = weight[ids[i], :] converted to T, W elements per thread step: 16-byte groups of out
// when every row of both starts 16-byte aligned and dim is a multiple of W (embedding_forward
// picks), else W = 1.
template <typename Wt, typename T, int W>
__global__ void embedding_forward_kernel(const int32_t* __restrict__ ids,
                                         const Wt* __restrict__ weight, T* __restrict__ out,
                                         int64_t n, int64_t dim) {
  const int64_t groups = n * dim / W;
  for (int64_t g = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t idx = g * W, i = idx / dim, j = idx % dim;
    const Vec<Wt, W> row = load_vec<W>(weight + static_cast<int64_t>(ids[i]) * dim + j);
    if constexpr (std::is_same_v<Wt, T>) {
      store_vec<W>(out + idx, row);
    } else {
      Vec<T, W> converted;
#pragma unroll
      for (int e = 0; e < W; ++e) converted.v[e] = from_float<T>(to_float(row.v[e]));
      store_vec<W>(out + idx, converted);
    }
  }
}

// The sort key of an id: itself when it is a row, else vocab (sorted last, summed into no row).
// Keys map to themselves, so every pass applies it to what it reads.
__device__ __forceinline__ int32_t row_key(int32_t id, int32_t vocab) {
  return id >= 0 && id < vocab ? id : vocab;
}
__device__ __forceinline__ int digit_of(int32_t key, int shift) {
  return (key >> shift) & (kBins - 1);
}

// Block c: chunk_ranks[c, d] = the number of the chunk's keys whose digit is d.
__global__ void __launch_bounds__(kSortThreads)
    count_digits_kernel(const int32_t* __restrict__ keys, int64_t n, int32_t vocab, int shift,
                        int* __restrict__ chunk_ranks) {
  __shared__ int counts[kBins];
  counts[threadIdx.x] = 0;
  __syncthreads();
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk;
  const int64_t end = min(n, begin + kChunk);
  for (int64_t i = begin + threadIdx.x; i < end; i += kSortThreads)
    atomicAdd(&counts[digit_of(row_key(keys[i], vocab), shift)], 1);  // order-free integer sums
  __syncthreads();
  chunk_ranks[static_cast<int64_t>(blockIdx.x) * kBins + threadIdx.x] = counts[threadIdx.x];
}

// One block: chunk_ranks[c, d] = the number of keys sorted before chunk c's first key with digit
// d, i.e. the keys of smaller digits plus those of digit d in the chunks before c.
__global__ void __launch_bounds__(kSortThreads)
    scan_digits_kernel(int64_t chunks, int* __restrict__ chunk_ranks) {
  __shared__ int digit_start[kBins];
  const int d = threadIdx.x;
  int total = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    int& slot = chunk_ranks[c * kBins + d];
    const int count = slot;
    slot = total;
    total += count;
  }
  digit_start[d] = total;
  __syncthreads();
  if (d == 0) {
    int sum = 0;
    for (int b = 0; b < kBins; ++b) {
      const int count = digit_start[b];
      digit_start[b] = sum;
      sum += count;
    }
  }
  __syncthreads();
  for (int64_t c = 0; c < chunks; ++c) chunk_ranks[c * kBins + d] += digit_start[d];
}

// Block c places chunk c's keys and positions (positions == nullptr: the keys' own indices) at
// their ranks. Warp w takes the chunk's w-th run of kWarpSpan tokens; its first rank per digit is
// the chunk's plus the counts of the warps before it.
__global__ void __launch_bounds__(kSortThreads)
    place_digits_kernel(const int32_t* __restrict__ keys, const int32_t* __restrict__ positions,
                        int64_t n, int32_t vocab, int shift, const int* __restrict__ chunk_ranks,
                        int32_t* __restrict__ sorted_keys, int32_t* __restrict__ sorted_positions) {
  __shared__ int next_rank[kSortWarps][kBins];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  for (int w = 0; w < kSortWarps; ++w) next_rank[w][threadIdx.x] = 0;
  __syncthreads();
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunk + warp * kWarpSpan;
  const int64_t end = min(n, begin + kWarpSpan);
  for (int64_t i = begin + lane; i < end; i += kWarp)
    atomicAdd(&next_rank[warp][digit_of(row_key(keys[i], vocab), shift)], 1);
  __syncthreads();
  int rank = chunk_ranks[static_cast<int64_t>(blockIdx.x) * kBins + threadIdx.x];
  for (int w = 0; w < kSortWarps; ++w) {
    const int count = next_rank[w][threadIdx.x];
    next_rank[w][threadIdx.x] = rank;
    rank += count;
  }
  __syncthreads();
  const unsigned earlier_lanes = (1u << lane) - 1;
  for (int64_t round = begin; round < end; round += kWarp) {  // the same rounds for the warp
    const int64_t i = round + lane;
    const bool present = i < end;
    const int32_t key = present ? row_key(keys[i], vocab) : 0;
    const int digit = present ? digit_of(key, shift) : -1;
    const unsigned peers = __match_any_sync(kFullMask, digit);
    if (present) {
      const int r = next_rank[warp][digit] + __popc(peers & earlier_lanes);
      sorted_keys[r] = key;
      sorted_positions[r] = positions ? positions[i] : static_cast<int32_t>(i);
    }
    __syncwarp();  // every lane has read next_rank for this round
    if (present && lane == __ffs(peers) - 1) next_rank[warp][digit] += __popc(peers);
    __syncwarp();
  }
}

// row_start[v] = the first position of the sorted keys holding a key >= v, for v in [0, vocab].
__global__ void __launch_bounds__(kSearchThreads)
    row_starts_kernel(const int32_t* __restrict__ sorted_keys, int64_t n, int32_t vocab,
                      int32_t* __restrict__ row_start) {
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v <= vocab;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (sorted_keys[mid] < v)
        lo = mid + 1;
      else
        hi = mid;
    }
    row_start[v] = static_cast<int32_t>(lo);
  }
}

// Block (row v = blockIdx.x, column tile blockIdx.y): thread c sums column c of v's tokens' dout
// rows in token order. The block stages kAccThreads token positions in shared memory at a time;
// each thread then issues the loads of kDepth tokens before adding them in order, so a row with
// thousands of tokens keeps kDepth loads per column in flight while the sum stays sequential.
template <typename T, typename Wt>
__global__ void __launch_bounds__(kAccThreads)
    accumulate_rows_kernel(const int32_t* __restrict__ sorted_positions,
                           const int32_t* __restrict__ row_start, const T* dout,
                           Wt* __restrict__ dweight, int64_t dim) {
  __shared__ int32_t positions[kAccThreads];
  const int64_t row = blockIdx.x;
  const int64_t c = static_cast<int64_t>(blockIdx.y) * kAccThreads + threadIdx.x;
  const bool in_range = c < dim;
  const int32_t begin = row_start[row], end = row_start[row + 1];
  float acc = 0.f;
  for (int32_t chunk = begin; chunk < end; chunk += kAccThreads) {
    const int32_t count = min(kAccThreads, end - chunk);
    __syncthreads();  // the previous chunk's positions have been read
    if (static_cast<int32_t>(threadIdx.x) < count)
      positions[threadIdx.x] = sorted_positions[chunk + threadIdx.x];
    __syncthreads();
    if (!in_range) continue;
    for (int32_t round = 0; round < count; round += kDepth) {
      float v[kDepth];  // past the chunk's end, reloads of its last token that are not added
#pragma unroll
      for (int k = 0; k < kDepth; ++k)
        v[k] = to_float(dout[static_cast<int64_t>(positions[min(round + k, count - 1)]) * dim + c]);
      // The fence keeps the compiler from sinking each load next to its add (which would leave one
      // load in flight): all kDepth loads are issued before the first add waits. (dout is not
      // __restrict__, so its loads are ordinary ones that the fence orders.)
      __threadfence_block();
#pragma unroll
      for (int k = 0; k < kDepth; ++k)
        if (round + k < count) acc += v[k];
    }
  }
  if (in_range) dweight[row * dim + c] = from_float<Wt>(acc);
}

}  // namespace

template <typename Wt, typename T>
void embedding_forward(const int32_t* ids, const Wt* weight, T* out, int64_t n, int64_t dim,
                       cudaStream_t stream) {
  if (n * dim == 0) return;
  constexpr int W = kPackWidth<T>;
  if (dim % W == 0 && rows_vector_aligned<Wt>(dim, {weight}) && rows_vector_aligned<T>(dim, {out}))
    embedding_forward_kernel<DeviceType<Wt>, DeviceType<T>, W>
        <<<grid_for(n * dim / W, kThreads), kThreads, 0, stream>>>(ids, device_ptr(weight),
                                                                   device_ptr(out), n, dim);
  else
    embedding_forward_kernel<DeviceType<Wt>, DeviceType<T>, 1>
        <<<grid_for(n * dim, kThreads), kThreads, 0, stream>>>(ids, device_ptr(weight),
                                                               device_ptr(out), n, dim);
  LATTE_CUDA_CHECK_LAUNCH();
}

int64_t embedding_backward_workspace_bytes(int64_t n, int64_t vocab) {
  return 4 * align(n * sizeof(int32_t)) + align(ceil_div(n, kChunk) * kBins * sizeof(int)) +
         align((vocab + 1) * sizeof(int32_t));
}

template <typename T, typename Wt>
void embedding_backward(const int32_t* ids, const T* dout, Wt* dweight, int64_t n, int64_t vocab,
                        int64_t dim, void* workspace, cudaStream_t stream) {
  if (vocab * dim == 0) return;
  LATTE_CHECK(n < (int64_t(1) << 31) && vocab < (int64_t(1) << 31) &&
              ceil_div(dim, kAccThreads) <= 65535)
      << "cuda embedding_backward: " << n << " tokens, vocab " << vocab << " x dim " << dim
      << " exceed the limits (2^31 tokens and rows, 65535 tiles of " << kAccThreads << " columns)";
  const BackwardWorkspace w = carve(workspace, n);
  const int32_t rows = static_cast<int32_t>(vocab);
  const int32_t* sorted_keys = w.keys[0];
  const int32_t* sorted_positions = nullptr;
  if (n > 0) {
    const auto chunks = static_cast<unsigned>(ceil_div(n, kChunk));
    const int32_t* keys = ids;
    for (int pass = 0; pass < sort_passes(vocab); ++pass) {
      const int shift = pass * kDigitBits;
      count_digits_kernel<<<chunks, kSortThreads, 0, stream>>>(keys, n, rows, shift, w.chunk_ranks);
      LATTE_CUDA_CHECK_LAUNCH();
      scan_digits_kernel<<<1, kSortThreads, 0, stream>>>(chunks, w.chunk_ranks);
      LATTE_CUDA_CHECK_LAUNCH();
      place_digits_kernel<<<chunks, kSortThreads, 0, stream>>>(
          keys, sorted_positions, n, rows, shift, w.chunk_ranks, w.keys[pass % 2],
          w.positions[pass % 2]);
      LATTE_CUDA_CHECK_LAUNCH();
      keys = sorted_keys = w.keys[pass % 2];
      sorted_positions = w.positions[pass % 2];
    }
  }
  row_starts_kernel<<<grid_for(vocab + 1, kSearchThreads), kSearchThreads, 0, stream>>>(
      sorted_keys, n, rows, w.row_start);
  LATTE_CUDA_CHECK_LAUNCH();
  const dim3 grid(static_cast<unsigned>(vocab), static_cast<unsigned>(ceil_div(dim, kAccThreads)));
  accumulate_rows_kernel<<<grid, kAccThreads, 0, stream>>>(
      sorted_positions, w.row_start, device_ptr(dout), device_ptr(dweight), dim);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_EMBEDDING(T, W)                                                                     \
  template void embedding_forward<W, T>(const int32_t*, const W*, T*, int64_t, int64_t,           \
                                        cudaStream_t);                                            \
  template void embedding_backward<T, W>(const int32_t*, const T*, W*, int64_t, int64_t, int64_t, \
                                         void*, cudaStream_t);
LATTE_EMBEDDING(float, float)
LATTE_EMBEDDING(latte::bf16, latte::bf16)
LATTE_EMBEDDING(latte::bf16, float)
#undef LATTE_EMBEDDING

}  // namespace latte::kernels::cuda
