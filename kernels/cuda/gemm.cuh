// Row-major GEMMs on CUDA through cuBLAS / cuBLASLt, twins of kernels/cpu/gemm.h:
// C = alpha op(A) op(B) + beta C with leading dimensions (views without copies), a strided-batched
// form, a bias epilogue (cuBLASLt) and grouped expert GEMMs over row blocks of a sorted
// activation matrix. T = float (fp32 compute; TF32 is never enabled, so results are full fp32) or
// latte::bf16 (bf16 in and out, fp32 accumulation).
// How it computes: a row-major [m, n] matrix is a column-major [n, m] one, so C^T = op(B)^T op(A)^T
// goes to cuBLAS with the operands swapped. gemm runs on cuBLASLt with an algorithm chosen once per
// size class (sizes rounded up to four steps per octave) and reused, since the expert GEMMs'
// sizes change every step and a heuristic per new size costs more host time than the GEMM; when
// cuBLASLt has no algorithm or rejects the problem, cuBLAS chooses. The grouped GEMMs take the
// group offsets on the host (one D2H copy of E + 1 counts per MoE layer) and issue one GEMM per
// non-empty group.
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

template <typename T>
void gemm(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
          int64_t n, int64_t k, float alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
          float beta, T* c, int64_t ldc);

// `batch` GEMMs; operand i starts at a + i * stride_a (stride 0 = shared by all).
template <typename T>
void gemm_batched(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b,
                  int64_t batch, int64_t m, int64_t n, int64_t k, float alpha, const T* a,
                  int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b,
                  float beta, T* c, int64_t ldc, int64_t stride_c);

// C[m, n] = op(A) op(B) + bias[n] (bias added to every row) by the cuBLASLt BIAS epilogue; when
// cuBLASLt offers no algorithm for the shape, a cuBLAS GEMM followed by a bias kernel.
template <typename T>
void gemm_bias(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
               int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               const T* bias, T* c, int64_t ldc);

// For each group g with rows [offsets[g], offsets[g+1]) (host array of groups + 1 offsets):
//   C[rows_g, n] = alpha A[rows_g, k] op(B_g) + beta C[rows_g, n],  B_g = b + g * stride_b,
// op(B_g) = B_g^T for B_g stored [n, k] (trans_b, the [out, in] weight layout) else B_g [k, n].
template <typename T>
void grouped_gemm(const BlasHandles& h, cudaStream_t stream, bool trans_b, const int64_t* offsets,
                  int64_t groups, int64_t n, int64_t k, float alpha, const T* a, int64_t lda,
                  const T* b, int64_t ldb, int64_t stride_b, float beta, T* c, int64_t ldc);

// Weight gradients of grouped_gemm with trans_b: for each group g,
//   W_g[n, k] = alpha dY[rows_g, n]^T X[rows_g, k] + beta W_g,  W_g = w + g * stride_w
// (an empty group gets beta W_g).
template <typename T>
void grouped_gemm_weight_grad(const BlasHandles& h, cudaStream_t stream, const int64_t* offsets,
                              int64_t groups, int64_t n, int64_t k, float alpha, const T* dy,
                              int64_t lddy, const T* x, int64_t ldx, float beta, T* w, int64_t ldw,
                              int64_t stride_w);

}  // namespace latte::kernels::cuda
