// Error checking for CUDA runtime and cuBLAS calls: LATTE_CUDA_CHECK(call) and
// LATTE_CUBLAS_CHECK(call) throw latte::Error naming the call, file:line and the library's error
// string when the call does not return success. Host code only (.cu and .cpp files alike).
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "engine/error.h"

#define LATTE_CUDA_CHECK(call)                                                               \
  do {                                                                                       \
    const cudaError_t latte_cuda_status_ = (call);                                           \
    LATTE_CHECK(latte_cuda_status_ == cudaSuccess)                                           \
        << "CUDA error " << cudaGetErrorName(latte_cuda_status_) << " ("                     \
        << cudaGetErrorString(latte_cuda_status_) << ") in " #call " at " << __FILE__ << ":" \
        << __LINE__;                                                                         \
  } while (0)

#define LATTE_CUBLAS_CHECK(call)                                                                  \
  do {                                                                                            \
    const cublasStatus_t latte_cublas_status_ = (call);                                           \
    LATTE_CHECK(latte_cublas_status_ == CUBLAS_STATUS_SUCCESS)                                    \
        << "cuBLAS error " << cublasGetStatusName(latte_cublas_status_) << " ("                   \
        << cublasGetStatusString(latte_cublas_status_) << ") in " #call " at " << __FILE__ << ":" \
        << __LINE__;                                                                              \
  } while (0)

// Checks that the kernel launches just issued on this thread were accepted (bad configuration,
// too much shared memory); errors that happen while a kernel runs surface at the next sync.
#define LATTE_CUDA_CHECK_LAUNCH() LATTE_CUDA_CHECK(cudaGetLastError())
