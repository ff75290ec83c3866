#include "kernels/cuda/moe_routing.cuh"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

constexpr int kThreads = 128;
constexpr int kWarpsPerBlock = kThreads / kWarp;
constexpr float kNormEpsilon = 1e-20f;  // added to the sum of the chosen scores (SPEC §3)

__device__ __forceinline__ float stable_sigmoid(float x) {
  if (x >= 0.f) return 1.f / (1.f + expf(-x));
  const float e = expf(x);
  return e / (1.f + e);
}

// The warp that owns token `blockIdx.x * warps + warp`, or -1 past the end.
__device__ __forceinline__ int64_t warp_token(int64_t n_tokens) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  return t < n_tokens ? t : -1;
}

__global__ void router_scores_forward_kernel(const float* __restrict__ logits, int64_t n_tokens,
                                             int n_experts, bool softmax,
                                             float* __restrict__ scores) {
  const int64_t t = warp_token(n_tokens);
  if (t < 0) return;
  const int lane = threadIdx.x % kWarp;
  const float* x = logits + t * n_experts;
  float* s = scores + t * n_experts;
  if (!softmax) {
    for (int e = lane; e < n_experts; e += kWarp) s[e] = stable_sigmoid(x[e]);
    return;
  }
  float mx = -INFINITY;
  for (int e = lane; e < n_experts; e += kWarp) mx = fmaxf(mx, x[e]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int e = lane; e < n_experts; e += kWarp) sum += expf(x[e] - mx);
  sum = warp_sum(sum);
  for (int e = lane; e < n_experts; e += kWarp) s[e] = expf(x[e] - mx) / sum;
}

__global__ void router_scores_backward_kernel(const float* __restrict__ scores,
                                              const float* __restrict__ dscores, int64_t n_tokens,
                                              int n_experts, bool softmax,
                                              float* __restrict__ dlogits) {
  const int64_t t = warp_token(n_tokens);
  if (t < 0) return;
  const int lane = threadIdx.x % kWarp;
  const float* s = scores + t * n_experts;
  const float* ds = dscores + t * n_experts;
  float* dx = dlogits + t * n_experts;
  if (!softmax) {
    for (int e = lane; e < n_experts; e += kWarp) dx[e] += ds[e] * s[e] * (1.f - s[e]);
    return;
  }
  float dot = 0.f;
  for (int e = lane; e < n_experts; e += kWarp) dot += ds[e] * s[e];
  dot = warp_sum(dot);
  for (int e = lane; e < n_experts; e += kWarp) dx[e] += s[e] * (ds[e] - dot);
}

// A candidate of an argmax: index -1 is "none yet".
struct Best {
  float value;
  int index;
};

// Larger value first, the lower index on equal values (the CPU's ranking).
__device__ __forceinline__ bool better(Best a, Best b) {
  if (a.index < 0) return false;
  if (b.index < 0) return true;
  return a.value > b.value || (a.value == b.value && a.index < b.index);
}

// The best of values[i] over i in [0, n) with taken[i] == 0; every lane gets it.
__device__ Best warp_argmax(const float* values, const unsigned char* taken, int n) {
  const int lane = threadIdx.x % kWarp;
  Best best{0.f, -1};
  for (int i = lane; i < n; i += kWarp) {
    const Best c{values[i], i};
    if (!taken[i] && better(c, best)) best = c;
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const Best other{__shfl_xor_sync(kFullMask, best.value, offset),
                     __shfl_xor_sync(kFullMask, best.index, offset)};
    if (better(other, best)) best = other;
  }
  return best;
}

struct SelectArgs {
  int n_experts, top_k, n_group, topk_group, group_size;
  bool use_bias, use_groups, group_max, norm_topk_prob;  // group_max: group_limited_greedy
  float scale;
};

// Per-warp shared state: sel[E] and gscore[G] floats, then taken[E] and gtaken[G] flags.
__global__ void __launch_bounds__(kThreads)
    select_experts_kernel(const SelectArgs a, const float* __restrict__ scores,
                          const float* __restrict__ bias, int64_t n_tokens,
                          int32_t* __restrict__ expert_ids, float* __restrict__ weights) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int per_warp = (a.n_experts + a.n_group) * 5;
  float* sel = reinterpret_cast<float*>(smem + warp * ((per_warp + 15) / 16 * 16));
  float* gscore = sel + a.n_experts;
  unsigned char* taken = reinterpret_cast<unsigned char*>(gscore + a.n_group);
  unsigned char* gtaken = taken + a.n_experts;
  const int64_t t = warp_token(n_tokens);
  if (t < 0) return;
  const float* s = scores + t * a.n_experts;
  for (int e = lane; e < a.n_experts; e += kWarp) {
    sel[e] = a.use_bias ? s[e] + bias[e] : s[e];
    taken[e] = 0;
  }
  __syncwarp();
  if (a.use_groups) {
    for (int g = lane; g < a.n_group; g += kWarp) {
      const float* x = sel + g * a.group_size;
      float first = -INFINITY, second = -INFINITY;
      for (int j = 0; j < a.group_size; ++j) {
        if (x[j] > first) {
          second = first;
          first = x[j];
        } else if (x[j] > second) {
          second = x[j];
        }
      }
      gscore[g] = a.group_max || a.group_size == 1 ? first : first + second;
      gtaken[g] = 0;
    }
    __syncwarp();
    for (int r = 0; r < a.topk_group; ++r) {
      const Best g = warp_argmax(gscore, gtaken, a.n_group);
      if (lane == 0) gtaken[g.index] = 1;
      __syncwarp();
    }
    for (int e = lane; e < a.n_experts; e += kWarp)
      if (!gtaken[e / a.group_size]) sel[e] = -INFINITY;
    __syncwarp();
  }
  int32_t* ids = expert_ids + t * a.top_k;
  float* w = weights + t * a.top_k;
  float sum = 0.f;
  for (int k = 0; k < a.top_k; ++k) {
    const Best e = warp_argmax(sel, taken, a.n_experts);
    if (lane == 0) {
      taken[e.index] = 1;
      ids[k] = e.index;
      w[k] = s[e.index];
      sum += s[e.index];
    }
    __syncwarp();
  }
  if (lane == 0) {
    const float denom = a.norm_topk_prob ? sum + kNormEpsilon : 1.f;
    for (int k = 0; k < a.top_k; ++k) w[k] = w[k] / denom * a.scale;
  }
}

__global__ void expert_weights_backward_kernel(const float* __restrict__ scores,
                                               const int32_t* __restrict__ expert_ids,
                                               const float* __restrict__ dweights, int64_t n_tokens,
                                               int n_experts, int top_k, bool norm_topk_prob,
                                               float scale, float* __restrict__ dscores) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= n_tokens) return;
  const float* s = scores + t * n_experts;
  const int32_t* ids = expert_ids + t * top_k;
  const float* dw = dweights + t * top_k;
  float* ds = dscores + t * n_experts;
  if (!norm_topk_prob) {
    for (int k = 0; k < top_k; ++k) ds[ids[k]] += scale * dw[k];
    return;
  }
  // w_k = c s_k / D with D = sum_j s_j + eps, so dL/ds_m = (c / D) (dw_m - sum_k dw_k s_k / D).
  float sum = 0.f;
  for (int k = 0; k < top_k; ++k) sum += s[ids[k]];
  const float denom = sum + kNormEpsilon;
  float dot = 0.f;
  for (int k = 0; k < top_k; ++k) dot += dw[k] * s[ids[k]];
  const float shared = dot / denom;
  for (int k = 0; k < top_k; ++k) ds[ids[k]] += scale / denom * (dw[k] - shared);
}

unsigned warp_blocks(int64_t n_tokens) {
  return static_cast<unsigned>(ceil_div(n_tokens, kWarpsPerBlock));
}

void check_experts(int64_t n_experts, const char* op) {
  LATTE_CHECK(n_experts >= 1 && n_experts <= kMaxRouterExperts)
      << op << ": n_routed_experts " << n_experts << " is outside [1, " << kMaxRouterExperts << "]";
}

}  // namespace

void router_scores_forward(const float* logits, int64_t n_tokens, int64_t n_experts,
                           cpu::RouterScoring scoring, float* scores, cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_experts(n_experts, "cuda router_scores_forward");
  router_scores_forward_kernel<<<warp_blocks(n_tokens), kThreads, 0, stream>>>(
      logits, n_tokens, static_cast<int>(n_experts), scoring == cpu::RouterScoring::kSoftmax,
      scores);
  LATTE_CUDA_CHECK_LAUNCH();
}

void router_scores_backward(const float* scores, const float* dscores, int64_t n_tokens,
                            int64_t n_experts, cpu::RouterScoring scoring, float* dlogits,
                            cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_experts(n_experts, "cuda router_scores_backward");
  router_scores_backward_kernel<<<warp_blocks(n_tokens), kThreads, 0, stream>>>(
      scores, dscores, n_tokens, static_cast<int>(n_experts),
      scoring == cpu::RouterScoring::kSoftmax, dlogits);
  LATTE_CUDA_CHECK_LAUNCH();
}

void select_experts(const float* scores, const float* correction_bias, int64_t n_tokens,
                    const cpu::RouterSpec& spec, int32_t* expert_ids, float* weights,
                    cudaStream_t stream) {
  if (n_tokens == 0) return;
  check_experts(spec.n_experts, "cuda select_experts");
  const bool group_method = spec.method == cpu::RouterTopkMethod::kGroupLimitedGreedy ||
                            spec.method == cpu::RouterTopkMethod::kNoauxTc;
  SelectArgs a;
  a.use_groups = group_method && spec.topk_group < spec.n_group;
  a.n_experts = static_cast<int>(spec.n_experts);
  a.top_k = static_cast<int>(spec.top_k);
  a.n_group = a.use_groups ? static_cast<int>(spec.n_group) : 1;
  a.topk_group = a.use_groups ? static_cast<int>(spec.topk_group) : 1;
  a.group_size = a.n_experts / a.n_group;
  a.use_bias = spec.method == cpu::RouterTopkMethod::kNoauxTc && correction_bias != nullptr;
  a.group_max = spec.method == cpu::RouterTopkMethod::kGroupLimitedGreedy;
  a.norm_topk_prob = spec.norm_topk_prob;
  a.scale = static_cast<float>(spec.routed_scaling_factor);
  const int per_warp = (a.n_experts + a.n_group) * 5;
  const size_t smem = static_cast<size_t>(kWarpsPerBlock) * ((per_warp + 15) / 16 * 16);
  select_experts_kernel<<<warp_blocks(n_tokens), kThreads, smem, stream>>>(
      a, scores, correction_bias, n_tokens, expert_ids, weights);
  LATTE_CUDA_CHECK_LAUNCH();
}

void expert_weights_backward(const float* scores, const int32_t* expert_ids, const float* dweights,
                             int64_t n_tokens, const cpu::RouterSpec& spec, float* dscores,
                             cudaStream_t stream) {
  if (n_tokens == 0) return;
  constexpr int kTokenThreads = 128;
  expert_weights_backward_kernel<<<static_cast<unsigned>(ceil_div(n_tokens, kTokenThreads)),
                                   kTokenThreads, 0, stream>>>(
      scores, expert_ids, dweights, n_tokens, static_cast<int>(spec.n_experts),
      static_cast<int>(spec.top_k), spec.norm_topk_prob,
      static_cast<float>(spec.routed_scaling_factor), dscores);
  LATTE_CUDA_CHECK_LAUNCH();
}

}  // namespace latte::kernels::cuda
