// The scalars between cross-entropy's sums and its mean on CUDA, computed on the device so that
// neither the forward nor the backward reads the count back to the host:
//   loss = loss_sum / counted (NaN when counted is 0);
//   scale = dloss / counted, the factor cross_entropy_backward multiplies (softmax - onehot) by.
// How it computes: one thread, in double, rounded once to fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace latte::kernels::cuda {

// loss_sum and counted as written by cross_entropy_forward (kernels/cuda/cross_entropy.cuh).
void cross_entropy_mean_loss(const double* loss_sum, const int64_t* counted, float* loss,
                             cudaStream_t stream);

void cross_entropy_grad_scale(const float* dloss, const int64_t* counted, float* scale,
                              cudaStream_t stream);

}  // namespace latte::kernels::cuda
