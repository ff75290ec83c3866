// The squared global gradient norm on CUDA: the sum of g^2 over every element of a list of
// tensors, in double (the twin of summing kernels/cpu/elementwise.h sum_squares over tensors).
// How it computes, deterministically in two passes: pass 1 runs exactly kGradNormPartials blocks;
// the concatenated elements are cut into chunks of 2048 and block b takes chunks b, b + P, ... in
// order, each thread summing in double (16-byte loads when every tensor of the launch starts
// 16-byte aligned) and the block reducing in a fixed tree into partial[b]
// (added to it for the second and later groups of kGradNormTensorsPerLaunch tensors). Pass 2 is
// one block adding the partials in a fixed tree. The grouping is a pure function of the sizes, so
// the result is the same on every run and every GPU.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

inline constexpr int kGradNormPartials = 1024;  // doubles of workspace
inline constexpr int kGradNormTensorsPerLaunch = 128;

template <typename G>
struct GradTensor {
  const G* data = nullptr;  // n contiguous elements on the device
  int64_t n = 0;
};

// *out (device) = sum of squares of every element of the host array tensors[0, count), G = float
// or bf16. workspace: kGradNormPartials doubles on the device.
template <typename G>
void global_sum_squares(const GradTensor<G>* tensors, int64_t count, double* workspace, double* out,
                        cudaStream_t stream);

}  // namespace latte::kernels::cuda
