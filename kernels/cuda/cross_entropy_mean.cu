#include "kernels/cuda/cross_entropy_mean.cuh"

#include "kernels/cuda/cuda_check.h"

namespace latte::kernels::cuda {

namespace {

__global__ void mean_loss_kernel(const double* loss_sum, const int64_t* counted, float* loss) {
  *loss = static_cast<float>(*loss_sum / static_cast<double>(*counted));
}

__global__ void grad_scale_kernel(const float* dloss, const int64_t* counted, float* scale) {
  *scale = static_cast<float>(static_cast<double>(*dloss) / static_cast<double>(*counted));
}

}  // namespace

void cross_entropy_mean_loss(const double* loss_sum, const int64_t* counted, float* loss,
                             cudaStream_t stream) {
  mean_loss_kernel<<<1, 1, 0, stream>>>(loss_sum, counted, loss);
  LATTE_CUDA_CHECK_LAUNCH();
}

void cross_entropy_grad_scale(const float* dloss, const int64_t* counted, float* scale,
                              cudaStream_t stream) {
  grad_scale_kernel<<<1, 1, 0, stream>>>(dloss, counted, scale);
  LATTE_CUDA_CHECK_LAUNCH();
}

}  // namespace latte::kernels::cuda
