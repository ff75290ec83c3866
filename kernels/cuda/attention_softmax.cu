#include "kernels/cuda/attention_softmax.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kMaxRowThreads = 256;

struct RowShape {
  int64_t q_len, kv_len, matrix_stride;
  bool causal;
};

// Keys [0, visible) of query row i are unmasked (AttentionProblem::visible_keys).
__device__ __forceinline__ int64_t visible_keys(const RowShape& s, int64_t i) {
  if (!s.causal) return s.kv_len;
  const int64_t v = i + s.kv_len - s.q_len + 1;
  return v < 0 ? 0 : (v > s.kv_len ? s.kv_len : v);
}

// Block r: row r % q_len of matrix r / q_len.
template <typename T>
__global__ void softmax_forward_kernel(RowShape s, T* __restrict__ scores, float scale) {
  __shared__ float scratch[kWarp];
  const int64_t row = blockIdx.x, i = row % s.q_len;
  T* r = scores + (row / s.q_len) * s.matrix_stride + i * s.kv_len;
  const int64_t visible = visible_keys(s, i);
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < visible; j += blockDim.x)
    mx = fmaxf(mx, scale * to_float(r[j]));
  mx = block_max(mx, scratch);
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < visible; j += blockDim.x)
    sum += expf(scale * to_float(r[j]) - mx);
  sum = block_sum(sum, scratch);
  // In place: each thread rewrites only the entries it read. A row that sees no key has no
  // entry to scale and becomes all 0.
  const float inv = visible > 0 ? 1.f / sum : 0.f;
  for (int64_t j = threadIdx.x; j < s.kv_len; j += blockDim.x)
    r[j] = from_float<T>(j < visible ? expf(scale * to_float(r[j]) - mx) * inv : 0.f);
}

template <typename T>
__global__ void softmax_backward_kernel(RowShape s, const T* __restrict__ probs,
                                        T* __restrict__ grad, int64_t grad_matrix_stride) {
  __shared__ float scratch[kWarp];
  const int64_t row = blockIdx.x, m = row / s.q_len, i = row % s.q_len;
  const T* pr = probs + m * s.matrix_stride + i * s.kv_len;
  T* gr = grad + m * grad_matrix_stride + i * s.kv_len;
  float dot = 0.f;
  for (int64_t j = threadIdx.x; j < s.kv_len; j += blockDim.x)
    dot += to_float(pr[j]) * to_float(gr[j]);
  dot = block_sum(dot, scratch);
  for (int64_t j = threadIdx.x; j < s.kv_len; j += blockDim.x)
    gr[j] = from_float<T>(to_float(pr[j]) * (to_float(gr[j]) - dot));
}

// Blocks of one row: a multiple of 32 covering the row, at most kMaxRowThreads.
int row_threads(int64_t kv_len) {
  return static_cast<int>(kv_len >= kMaxRowThreads ? kMaxRowThreads
                                                   : ceil_div(kv_len, kWarp) * kWarp);
}

// The grid of one block per row, checked against CUDA's limit.
unsigned row_blocks(const cpu::AttentionProblem& p, int64_t matrices, const char* op) {
  const int64_t rows = matrices * p.q_len;
  LATTE_CHECK(rows < (int64_t(1) << 31))
      << op << ": " << matrices << " matrices of " << p.q_len << " rows exceed the grid limit";
  return static_cast<unsigned>(rows);
}

}  // namespace

template <typename T>
void attention_softmax_forward(const cpu::AttentionProblem& p, T* scores, int64_t matrices,
                               int64_t matrix_stride, cudaStream_t stream) {
  if (matrices == 0 || p.q_len == 0 || p.kv_len == 0) return;
  const unsigned blocks = row_blocks(p, matrices, "cuda attention_softmax_forward");
  softmax_forward_kernel<<<blocks, row_threads(p.kv_len), 0, stream>>>(
      RowShape{p.q_len, p.kv_len, matrix_stride, p.causal}, device_ptr(scores),
      static_cast<float>(p.scale));
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void attention_softmax_backward(const cpu::AttentionProblem& p, const T* probs, T* d_probs,
                                int64_t matrices, int64_t matrix_stride, int64_t grad_matrix_stride,
                                cudaStream_t stream) {
  if (matrices == 0 || p.q_len == 0 || p.kv_len == 0) return;
  const unsigned blocks = row_blocks(p, matrices, "cuda attention_softmax_backward");
  softmax_backward_kernel<<<blocks, row_threads(p.kv_len), 0, stream>>>(
      RowShape{p.q_len, p.kv_len, matrix_stride, p.causal}, device_ptr(probs), device_ptr(d_probs),
      grad_matrix_stride);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_ATTENTION_SOFTMAX(T)                                                                 \
  template void attention_softmax_forward<T>(const cpu::AttentionProblem&, T*, int64_t, int64_t,   \
                                             cudaStream_t);                                        \
  template void attention_softmax_backward<T>(const cpu::AttentionProblem&, const T*, T*, int64_t, \
                                              int64_t, int64_t, cudaStream_t);
LATTE_ATTENTION_SOFTMAX(float)
LATTE_ATTENTION_SOFTMAX(latte::bf16)
#undef LATTE_ATTENTION_SOFTMAX

}  // namespace latte::kernels::cuda
