#include "kernels/cuda/moe_balance.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / kWarp;
constexpr int kReduceThreads = 1024;

int64_t align(int64_t bytes) {
  return (bytes + 255) / 256 * 256;
}

struct BalanceWorkspace {
  int* counts;        // [B, E]: top-k slots of sequence b that chose expert e
  double* per_token;  // [B*T]
};

BalanceWorkspace carve(void* base, int64_t n_seqs, int64_t n_experts) {
  char* p = static_cast<char*>(base);
  return {reinterpret_cast<int*>(p),
          reinterpret_cast<double*>(p + align(n_seqs * n_experts * sizeof(int)))};
}

struct BalanceArgs {
  int64_t n_seqs, seq_len, top_k;
  int n_experts;
  double unit;  // alpha E / (B K T^2): the coefficient of one counted slot
};

constexpr int64_t kSlotChunk = 4096;  // top-k slots per block of count_slots_kernel

// Block (x, b) counts slots [x kSlotChunk, (x + 1) kSlotChunk) of sequence b in a shared-memory
// histogram of the E experts, then adds its nonzero counts to counts[b, :]: one global atomic per
// (block, expert) instead of one per slot on E hot addresses.
__global__ void __launch_bounds__(kThreads)
    count_slots_kernel(const int32_t* __restrict__ ids, BalanceArgs a, int* counts) {
  extern __shared__ int hist[];
  for (int e = threadIdx.x; e < a.n_experts; e += blockDim.x) hist[e] = 0;
  __syncthreads();
  const int64_t slots = a.seq_len * a.top_k, b = blockIdx.y;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kSlotChunk;
  const int64_t end = min(slots, begin + kSlotChunk);
  const int32_t* seq = ids + b * slots;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const int32_t e = seq[i];
    if (e >= 0 && e < a.n_experts) atomicAdd(&hist[e], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < a.n_experts; e += blockDim.x)
    if (hist[e] != 0) atomicAdd(&counts[b * a.n_experts + e], hist[e]);
}

// z = sum_i s_i and weighted = sum_i C_i s_i of token t, on every lane of the warp.
__device__ void token_sums(const BalanceArgs& a, const float* s, const int* counts, int64_t t,
                           double& z, double& weighted) {
  const int lane = threadIdx.x % kWarp;
  const int* c = counts + (t / a.seq_len) * a.n_experts;
  z = 0;
  weighted = 0;
  for (int i = lane; i < a.n_experts; i += kWarp) {
    z += s[i];
    weighted += a.unit * c[i] * s[i];
  }
  z = warp_sum(z);
  weighted = warp_sum(weighted);
}

__global__ void per_token_kernel(const float* __restrict__ scores, BalanceArgs a,
                                 const int* __restrict__ counts, double* __restrict__ per_token) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (t >= a.n_seqs * a.seq_len) return;
  double z, weighted;
  token_sums(a, scores + t * a.n_experts, counts, t, z, weighted);
  if (threadIdx.x % kWarp == 0) per_token[t] = weighted / z;
}

__global__ void __launch_bounds__(kReduceThreads)
    sum_tokens_kernel(const double* __restrict__ per_token, int64_t n, float* loss) {
  __shared__ double scratch[kWarp];
  double sum = 0;
  for (int64_t t = threadIdx.x; t < n; t += blockDim.x) sum += per_token[t];
  sum = block_sum(sum, scratch);
  if (threadIdx.x == 0) *loss = static_cast<float>(sum);
}

__global__ void balance_backward_kernel(const float* __restrict__ scores, BalanceArgs a,
                                        const int* __restrict__ counts,
                                        const float* __restrict__ dloss,
                                        float* __restrict__ dscores) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (t >= a.n_seqs * a.seq_len) return;
  const float* s = scores + t * a.n_experts;
  double z, weighted;
  token_sums(a, s, counts, t, z, weighted);
  const double shared = weighted / (z * z), d = *dloss;
  const int* c = counts + (t / a.seq_len) * a.n_experts;
  float* ds = dscores + t * a.n_experts;
  for (int i = threadIdx.x % kWarp; i < a.n_experts; i += kWarp)
    ds[i] += static_cast<float>(d * (a.unit * c[i] / z - shared));
}

BalanceArgs count_slots(const int32_t* ids, int64_t n_seqs, int64_t seq_len, int64_t n_experts,
                        int64_t top_k, float alpha, const BalanceWorkspace& w,
                        cudaStream_t stream) {
  const BalanceArgs a{n_seqs, seq_len, top_k, static_cast<int>(n_experts),
                      static_cast<double>(alpha) * static_cast<double>(n_experts) /
                          (static_cast<double>(n_seqs) * static_cast<double>(top_k) *
                           static_cast<double>(seq_len) * static_cast<double>(seq_len))};
  LATTE_CUDA_CHECK(cudaMemsetAsync(w.counts, 0, n_seqs * n_experts * sizeof(int), stream));
  LATTE_CHECK(n_seqs <= 65535) << "cuda balance loss: " << n_seqs
                               << " sequences exceed the 65535 of the grid's y dimension";
  const int64_t slots = seq_len * top_k;
  if (n_seqs > 0 && slots > 0) {
    const dim3 grid(static_cast<unsigned>(ceil_div(slots, kSlotChunk)),
                    static_cast<unsigned>(n_seqs));
    count_slots_kernel<<<grid, kThreads, n_experts * sizeof(int), stream>>>(ids, a, w.counts);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  return a;
}

unsigned token_blocks(int64_t n_tokens) {
  return static_cast<unsigned>(ceil_div(n_tokens, kWarpsPerBlock));
}

__global__ void __launch_bounds__(kReduceThreads)
    update_bias_kernel(float* __restrict__ bias, const int64_t* __restrict__ load, int n_experts,
                       float gamma) {
  __shared__ long long scratch[kWarp];
  long long total = 0;
  for (int i = threadIdx.x; i < n_experts; i += blockDim.x) total += load[i];
  total = block_sum(total, scratch);
  for (int i = threadIdx.x; i < n_experts; i += blockDim.x) {
    const long long diff = total - static_cast<long long>(n_experts) * load[i];  // E (mean - load)
    bias[i] += diff > 0 ? gamma : diff < 0 ? -gamma : 0.f;
  }
}

}  // namespace

int64_t balance_loss_workspace_bytes(int64_t n_seqs, int64_t seq_len, int64_t n_experts) {
  return align(n_seqs * n_experts * sizeof(int)) + align(n_seqs * seq_len * sizeof(double));
}

void seq_aux_loss_forward(const float* scores, const int32_t* expert_ids, int64_t n_seqs,
                          int64_t seq_len, int64_t n_experts, int64_t top_k, float alpha,
                          float* loss, void* workspace, cudaStream_t stream) {
  const BalanceWorkspace w = carve(workspace, n_seqs, n_experts);
  const BalanceArgs a =
      count_slots(expert_ids, n_seqs, seq_len, n_experts, top_k, alpha, w, stream);
  const int64_t n_tokens = n_seqs * seq_len;
  if (n_tokens > 0) {
    per_token_kernel<<<token_blocks(n_tokens), kThreads, 0, stream>>>(scores, a, w.counts,
                                                                      w.per_token);
    LATTE_CUDA_CHECK_LAUNCH();
  }
  sum_tokens_kernel<<<1, kReduceThreads, 0, stream>>>(w.per_token, n_tokens, loss);
  LATTE_CUDA_CHECK_LAUNCH();
}

void seq_aux_loss_backward(const float* scores, const int32_t* expert_ids, int64_t n_seqs,
                           int64_t seq_len, int64_t n_experts, int64_t top_k, float alpha,
                           const float* dloss, float* dscores, void* workspace,
                           cudaStream_t stream) {
  const BalanceWorkspace w = carve(workspace, n_seqs, n_experts);
  const BalanceArgs a =
      count_slots(expert_ids, n_seqs, seq_len, n_experts, top_k, alpha, w, stream);
  const int64_t n_tokens = n_seqs * seq_len;
  if (n_tokens == 0) return;
  balance_backward_kernel<<<token_blocks(n_tokens), kThreads, 0, stream>>>(scores, a, w.counts,
                                                                           dloss, dscores);
  LATTE_CUDA_CHECK_LAUNCH();
}

void switch_aux_loss_forward(const float* scores, const int32_t* expert_ids, int64_t n_tokens,
                             int64_t n_experts, int64_t top_k, float alpha, float* loss,
                             void* workspace, cudaStream_t stream) {
  seq_aux_loss_forward(scores, expert_ids, 1, n_tokens, n_experts, top_k, alpha, loss, workspace,
                       stream);
}

void switch_aux_loss_backward(const float* scores, const int32_t* expert_ids, int64_t n_tokens,
                              int64_t n_experts, int64_t top_k, float alpha, const float* dloss,
                              float* dscores, void* workspace, cudaStream_t stream) {
  seq_aux_loss_backward(scores, expert_ids, 1, n_tokens, n_experts, top_k, alpha, dloss, dscores,
                        workspace, stream);
}

void update_correction_bias(float* bias, const int64_t* load, int64_t n_experts, float gamma,
                            cudaStream_t stream) {
  update_bias_kernel<<<1, kReduceThreads, 0, stream>>>(bias, load, static_cast<int>(n_experts),
                                                       gamma);
  LATTE_CUDA_CHECK_LAUNCH();
}

}  // namespace latte::kernels::cuda
