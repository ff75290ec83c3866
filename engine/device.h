// Memory operations on tensors that live on a non-CPU device (or cross devices), waiting for a
// device, and naming its work for external profilers. The CPU paths are in tensor.cpp; these
// route to the CUDA runtime when latte is built with it.
#pragma once

#include <string>

#include "engine/tensor.h"

namespace latte {

// dst[...] = src[...] where at least one side is not on the CPU (same shape; dtype converts).
void device_copy(const Tensor& src, const Tensor& dst);
// Every element of a contiguous device tensor = value.
void device_fill(const Tensor& dst, double value);
// Whether a CUDA device is usable in this process.
bool cuda_available();
// Throws latte::Error "<what>: no usable CUDA device" (saying when latte was built without the
// CUDA backend) unless cuda_available().
void require_cuda(const std::string& what);
// Waits for the work queued on `device` (a no-op for the CPU); kernel faults surface here.
void synchronize(Device device);

// Names the work issued on `device` during its lifetime (a training step: "latte step 12") for a
// profiler attached to the process: an NVTX range on CUDA, so `ncu --nvtx --nvtx-include
// "latte step 12/"` profiles that step's kernels only. Nothing on the CPU, and nothing when no
// profiler listens.
class DeviceRange {
 public:
  DeviceRange(Device device, const std::string& name);
  ~DeviceRange();
  DeviceRange(const DeviceRange&) = delete;
  DeviceRange& operator=(const DeviceRange&) = delete;

 private:
  bool open_;
};

}  // namespace latte
