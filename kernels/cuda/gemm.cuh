// Row-major GEMMs on CUDA through cuBLAS / cuBLASLt, twins of kernels/cpu/gemm.h:
// C = alpha op(A) op(B) + beta C with leading dimensions (views without copies), a strided-batched
// form and a bias epilogue (cuBLASLt). Operands T = float (fp32 compute; TF32 is never enabled, so
// results are full fp32) or latte::bf16 (fp32 accumulation); the result C is T, or float for bf16
// operands (the fp32 accumulators stored without rounding: mixed-precision weight gradients).
// How it computes: a row-major [m, n] matrix is a column-major [n, m] one, so C^T = op(B)^T op(A)^T
// goes to cuBLAS with the operands swapped. gemm and gemm_bias run on cuBLASLt with an algorithm
// chosen once per size class (sizes rounded up to four steps per octave) and reused, since the
// expert GEMMs' sizes change every step and a heuristic per new size (or per call) costs more host
// time than the GEMM; when cuBLASLt has no algorithm or rejects the problem, cuBLAS chooses.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

// The library handles and the cuBLASLt workspace the GEMMs run with (engine/cuda owns them).
struct BlasHandles {
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;  // device memory for cuBLASLt
  size_t workspace_bytes = 0;
};

template <typename T, typename C = T>
void gemm(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
          int64_t n, int64_t k, float alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
          float beta, C* c, int64_t ldc);

// `batch` GEMMs; operand i starts at a + i * stride_a (stride 0 = shared by all). One is gemm.
template <typename T, typename C = T>
void gemm_batched(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b,
                  int64_t batch, int64_t m, int64_t n, int64_t k, float alpha, const T* a,
                  int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b,
                  float beta, C* c, int64_t ldc, int64_t stride_c);

// C[m, n] = op(A) op(B) + bias[n] (bias added to every row) by the cuBLASLt BIAS epilogue, with
// its size class's algorithm; when cuBLASLt offers none for the shape, a cuBLAS GEMM followed by a
// bias kernel.
template <typename T>
void gemm_bias(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
               int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               const T* bias, T* c, int64_t ldc);

}  // namespace latte::kernels::cuda
