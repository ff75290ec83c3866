#include "kernels/cuda/gemm.cuh"

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace latte::kernels::cuda {

namespace {

using namespace detail;

template <typename T>
constexpr cudaDataType_t data_type() {
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_16BF;
}

cublasOperation_t op(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

int to_int(int64_t v, const char* what) {
  LATTE_CHECK(v >= 0 && v <= std::numeric_limits<int>::max())
      << "cuda gemm: " << what << " " << v << " does not fit cuBLAS's 32-bit int";
  return static_cast<int>(v);
}

// c[r, j] += bias[j] for a row-major [m, n] matrix.
template <typename T>
__global__ void add_bias_kernel(T* __restrict__ c, int64_t ldc, const T* __restrict__ bias,
                                int64_t m, int64_t n) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < m * n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / n, j = idx % n;
    c[r * ldc + j] = from_float<T>(to_float(c[r * ldc + j]) + to_float(bias[j]));
  }
}

// c[r, j] *= beta for a row-major [m, n] matrix (0 when beta is 0, even over NaN).
template <typename T>
__global__ void scale_matrix_kernel(T* __restrict__ c, int64_t ldc, int64_t m, int64_t n,
                                    float beta) {
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < m * n;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = idx / n, j = idx % n;
    c[r * ldc + j] = from_float<T>(beta == 0.f ? 0.f : beta * to_float(c[r * ldc + j]));
  }
}

// RAII holders for the cuBLASLt descriptors of one call.
struct LtMatmul {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~LtMatmul() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

// The largest power of two (at most 256) that divides the address.
uint32_t alignment_of(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint32_t bytes = 256;
  while (bytes > 1 && address % bytes != 0) bytes /= 2;
  return bytes;
}

}  // namespace

template <typename T>
void gemm(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
          int64_t n, int64_t k, float alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
          float beta, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  constexpr cudaDataType_t type = data_type<T>();
  LATTE_CUBLAS_CHECK(cublasSetStream(h.blas, stream));
  LATTE_CUBLAS_CHECK(cublasGemmEx(h.blas, op(trans_b), op(trans_a), to_int(n, "n"), to_int(m, "m"),
                                  to_int(k, "k"), &alpha, b, type, to_int(ldb, "ldb"), a, type,
                                  to_int(lda, "lda"), &beta, c, type, to_int(ldc, "ldc"),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <typename T>
void gemm_batched(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b,
                  int64_t batch, int64_t m, int64_t n, int64_t k, float alpha, const T* a,
                  int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b,
                  float beta, T* c, int64_t ldc, int64_t stride_c) {
  if (batch == 0 || m == 0 || n == 0) return;
  constexpr cudaDataType_t type = data_type<T>();
  LATTE_CUBLAS_CHECK(cublasSetStream(h.blas, stream));
  LATTE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h.blas, op(trans_b), op(trans_a), to_int(n, "n"), to_int(m, "m"), to_int(k, "k"), &alpha, b,
      type, to_int(ldb, "ldb"), stride_b, a, type, to_int(lda, "lda"), stride_a, &beta, c, type,
      to_int(ldc, "ldc"), stride_c, to_int(batch, "batch"), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
}

template <typename T>
void gemm_bias(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
               int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               const T* bias, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  constexpr cudaDataType_t type = data_type<T>();
  const float alpha = 1.f, beta = 0.f;
  // Column-major view: D^T [n, m] = op(B)^T [n, k] * op(A)^T [k, m] + bias[n].
  LtMatmul mm;
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&mm.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = op(trans_b), op_second = op(trans_a);
  const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                                                    sizeof(op_first)));
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                    &op_second, sizeof(op_second)));
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                    &epilogue, sizeof(epilogue)));
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                    &bias, sizeof(bias)));
  // Layouts of the stored operands, column-major: row-major B [k, n] is column-major [n, k]
  // (op N), row-major B [n, k] is column-major [k, n] (op T); likewise A; D^T is [n, m].
  LATTE_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&mm.a, type, trans_b ? k : n, trans_b ? n : k, ldb));
  LATTE_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&mm.b, type, trans_a ? m : k, trans_a ? k : m, lda));
  LATTE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&mm.c, type, n, m, ldc));
  LATTE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&mm.pref));
  LATTE_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(mm.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &h.workspace_bytes, sizeof(h.workspace_bytes)));
  // cuBLASLt assumes 256-byte aligned operands unless told otherwise; views (a linear over a
  // narrowed input) start anywhere, so state each operand's real alignment.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, const void*> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, c}};
  for (const auto& [attribute, pointer] : alignments) {
    const uint32_t bytes = alignment_of(pointer);
    LATTE_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(mm.pref, attribute, &bytes, sizeof(bytes)));
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(h.lt, mm.desc, mm.a, mm.b, mm.c,
                                                               mm.c, mm.pref, 1, &result, &found);
  if (status == CUBLAS_STATUS_SUCCESS && found > 0) {
    LATTE_CUBLAS_CHECK(cublasLtMatmul(h.lt, mm.desc, &alpha, b, mm.a, a, mm.b, &beta, c, mm.c, c,
                                      mm.c, &result.algo, h.workspace, h.workspace_bytes, stream));
    return;
  }
  gemm(h, stream, trans_a, trans_b, m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
  constexpr int kThreads = 256;
  add_bias_kernel<<<grid_for(m * n, kThreads), kThreads, 0, stream>>>(device_ptr(c), ldc,
                                                                      device_ptr(bias), m, n);
  LATTE_CUDA_CHECK_LAUNCH();
}

template <typename T>
void grouped_gemm(const BlasHandles& h, cudaStream_t stream, bool trans_b, const int64_t* offsets,
                  int64_t groups, int64_t n, int64_t k, float alpha, const T* a, int64_t lda,
                  const T* b, int64_t ldb, int64_t stride_b, float beta, T* c, int64_t ldc) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t rows = offsets[g + 1] - offsets[g];
    if (rows == 0) continue;
    gemm(h, stream, false, trans_b, rows, n, k, alpha, a + offsets[g] * lda, lda, b + g * stride_b,
         ldb, beta, c + offsets[g] * ldc, ldc);
  }
}

template <typename T>
void grouped_gemm_weight_grad(const BlasHandles& h, cudaStream_t stream, const int64_t* offsets,
                              int64_t groups, int64_t n, int64_t k, float alpha, const T* dy,
                              int64_t lddy, const T* x, int64_t ldx, float beta, T* w, int64_t ldw,
                              int64_t stride_w) {
  constexpr int kThreads = 256;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t rows = offsets[g + 1] - offsets[g];
    if (rows > 0) {
      gemm(h, stream, true, false, n, k, rows, alpha, dy + offsets[g] * lddy, lddy,
           x + offsets[g] * ldx, ldx, beta, w + g * stride_w, ldw);
    } else if (beta != 1.f && n * k > 0) {
      // No rows: W_g = beta W_g (cuBLAS is not asked to handle an empty inner dimension).
      scale_matrix_kernel<<<grid_for(n * k, kThreads), kThreads, 0, stream>>>(
          device_ptr(w + g * stride_w), ldw, n, k, beta);
      LATTE_CUDA_CHECK_LAUNCH();
    }
  }
}

#define LATTE_GEMM(T)                                                                            \
  template void gemm<T>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t, int64_t, \
                        float, const T*, int64_t, const T*, int64_t, float, T*, int64_t);        \
  template void gemm_batched<T>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t,  \
                                int64_t, int64_t, float, const T*, int64_t, int64_t, const T*,   \
                                int64_t, int64_t, float, T*, int64_t, int64_t);                  \
  template void gemm_bias<T>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t,     \
                             int64_t, const T*, int64_t, const T*, int64_t, const T*, T*,        \
                             int64_t);                                                           \
  template void grouped_gemm<T>(const BlasHandles&, cudaStream_t, bool, const int64_t*, int64_t, \
                                int64_t, int64_t, float, const T*, int64_t, const T*, int64_t,   \
                                int64_t, float, T*, int64_t);                                    \
  template void grouped_gemm_weight_grad<T>(const BlasHandles&, cudaStream_t, const int64_t*,    \
                                            int64_t, int64_t, int64_t, float, const T*, int64_t, \
                                            const T*, int64_t, float, T*, int64_t, int64_t);
LATTE_GEMM(float)
LATTE_GEMM(latte::bf16)
#undef LATTE_GEMM

}  // namespace latte::kernels::cuda
