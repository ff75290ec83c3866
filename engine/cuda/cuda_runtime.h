// The CUDA runtime of the engine: device discovery, one-time initialization (the caching device
// allocator is registered with allocator_for(Device::CUDA), the kernel tables with backend_for,
// the CUDA-event timer with profiler::register_device_timer), the stream every latte kernel runs
// on, and the cuBLAS / cuBLASLt handles with their workspace. One device per process: the one
// current when init() first runs (data parallelism runs one process per GPU).
#pragma once

#include <cuda_runtime_api.h>

#include "kernels/cuda/gemm.cuh"

namespace latte::cuda {

// The number of usable CUDA devices; 0 when there is none or no driver. When a device exists the
// runtime is initialized on the first call (which throws latte::Error if that fails).
int device_count();

// Initializes the runtime on the current device (idempotent, thread-safe). Throws latte::Error
// when no CUDA device is usable.
void init();

// Makes init() run on device `local_rank` % device count: each process of a data-parallel job
// takes the GPU of its rank among the processes of its node. Call before init() runs; throws
// latte::Error afterwards.
void select_device_for_local_rank(int local_rank);

// The stream latte's kernels, copies and GEMMs are issued on (a non-blocking stream created at
// init). Work on it is ordered, which is what makes reusing freed blocks in the caching allocator
// safe without events.
cudaStream_t stream();

// cuBLAS / cuBLASLt handles bound to the current device, with a cuBLASLt workspace.
const kernels::cuda::BlasHandles& blas();

// Waits until all work issued on stream() has finished; throws latte::Error on a kernel fault.
void synchronize();

// Opens and closes a named NVTX range on the calling thread (nested like scopes): profilers
// attached to the process (ncu --nvtx, nsys) see the work issued inside it under that name;
// without one attached the calls do nothing.
void push_range(const char* name) noexcept;
void pop_range() noexcept;

}  // namespace latte::cuda
