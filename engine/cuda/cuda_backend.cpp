#include "engine/cuda/cuda_backend.h"

namespace latte::cuda {

Backend backend() {
  Backend b;
  b.elementwise = &elementwise_kernels();
  b.linear = &linear_kernels();
  b.optimizer = &optimizer_kernels();
  b.moe = &moe_kernels();
  b.attention = &attention_kernels();
  b.nn = &nn_kernels();
  return b;
}

}  // namespace latte::cuda
