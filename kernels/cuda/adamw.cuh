// Multi-tensor AdamW on CUDA, the twin of kernels/cpu/adamw.h applied to a list of tensors:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
// with g = grad * grad_scale. Master weights and moments are fp32; gradients fp32 or bf16. A tensor
// may also name a bf16 compute copy of its parameter, which receives the updated value rounded to
// bf16 in the same pass (mixed precision without a separate cast per forward).
// How it computes: the tensors are cut into chunks of 4096 elements and one launch covers up to
// kAdamWTensorsPerLaunch tensors (their pointers travel in the kernel arguments, so nothing is
// copied to the device); blocks take chunks in a grid-stride loop. A longer list takes
// ceil(count / kAdamWTensorsPerLaunch) launches.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/adamw.h"
#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

inline constexpr int kAdamWTensorsPerLaunch = 64;

// One parameter tensor: n contiguous elements of each of param, grad, m and v (device memory).
template <typename G>
struct AdamWTensor {
  float* param = nullptr;
  const G* grad = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t n = 0;
  latte::bf16* compute_copy = nullptr;  // optional
};

// Updates every tensor of the host array `tensors[0, count)` with the same step (weight decay
// included: callers group tensors by weight decay).
template <typename G>
void adamw_update(const AdamWTensor<G>* tensors, int64_t count, const cpu::AdamWStep& step,
                  cudaStream_t stream);

}  // namespace latte::kernels::cuda
