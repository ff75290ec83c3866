// Memory operations on tensors that touch CUDA memory, behind Tensor::copy_ and Tensor::fill_
// (engine/device.cpp routes here when latte is built with CUDA): copies between any devices,
// strides and dtypes, and fill.
#pragma once

#include "engine/cuda/cuda_runtime.h"
#include "engine/tensor.h"

namespace latte::cuda {

// dst[...] = src[...] where at least one side lives on the GPU (same shape; dtype converts).
// Contiguous same-dtype copies are one cudaMemcpyAsync; other cases stage through a contiguous
// buffer and the strided-copy kernel. Returns once a copy to the host is complete.
void copy(const Tensor& src, const Tensor& dst);

// Every element of a contiguous GPU tensor = value (converted to its dtype).
void fill(const Tensor& dst, double value);

}  // namespace latte::cuda
