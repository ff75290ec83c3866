// The CUDA kernel tables, one per op family (engine/cuda/cuda_*_kernels.cpp), and the Backend
// that init() registers with engine/backend/backend.h.
#pragma once

#include "engine/backend/backend.h"

namespace latte::cuda {

const ElementwiseKernels& elementwise_kernels();
const LinearKernels& linear_kernels();
const NnKernels& nn_kernels();
const AttentionKernels& attention_kernels();
const MoeKernels& moe_kernels();
const OptimizerKernels& optimizer_kernels();

// Every CUDA table, as registered by init().
Backend backend();

}  // namespace latte::cuda
