#include "kernels/cuda/gemm.cuh"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
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

// The cuBLASLt problem C[m, n] = alpha op(A) op(B) + beta C in its column-major form D^T [n, m] =
// op(B)^T [n, k] op(A)^T [k, m] + beta C^T (D = C), with `epilogue` (bias: added to every row);
// A and B have `type`, C and D `c_type`.
void describe(LtMatmul& mm, cudaDataType_t type, cudaDataType_t c_type, bool trans_a, bool trans_b,
              int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc,
              cublasLtEpilogue_t epilogue, const void* bias) {
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&mm.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_first = op(trans_b), op_second = op(trans_a);
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first,
                                                    sizeof(op_first)));
  LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                    &op_second, sizeof(op_second)));
  if (epilogue != CUBLASLT_EPILOGUE_DEFAULT) {
    LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_EPILOGUE,
                                                      &epilogue, sizeof(epilogue)));
    LATTE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(mm.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof(bias)));
  }
  // Layouts of the stored operands, column-major: row-major B [k, n] is column-major [n, k]
  // (op N), row-major B [n, k] is column-major [k, n] (op T); likewise A; D^T is [n, m].
  LATTE_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&mm.a, type, trans_b ? k : n, trans_b ? n : k, ldb));
  LATTE_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&mm.b, type, trans_a ? m : k, trans_a ? k : m, lda));
  LATTE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&mm.c, c_type, n, m, ldc));
}

// cuBLASLt's best algorithm for `mm` within the workspace, for operands of these alignments
// (cuBLASLt assumes 256-byte aligned operands unless told otherwise; views start anywhere).
std::optional<cublasLtMatmulAlgo_t> best_algo(const BlasHandles& h, LtMatmul& mm, uint32_t align_a,
                                              uint32_t align_b, uint32_t align_c) {
  LATTE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&mm.pref));
  LATTE_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(mm.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                           &h.workspace_bytes, sizeof(h.workspace_bytes)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> alignments[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_c}};
  for (const auto& [attribute, bytes] : alignments)
    LATTE_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(mm.pref, attribute, &bytes, sizeof(bytes)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(h.lt, mm.desc, mm.a, mm.b, mm.c,
                                                               mm.c, mm.pref, 1, &result, &found);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) return std::nullopt;
  return result.algo;
}

// Algorithms chosen once per class of GEMM and reused. The experts' GEMMs change their row count
// (their inner size, for weight gradients) every step as routing changes; cuBLAS runs its
// heuristic for every size it has not seen, which made the host, not the GPU, the bottleneck of
// small MoE steps. A class rounds the changing sizes m and k up (size_class); the algorithm chosen
// for the class's largest problem runs every problem in it (cuBLASLt reports a problem an
// algorithm cannot run, and gemm then falls back to cuBLAS's own choice).
struct AlgoClass {
  cudaDataType_t type, c_type;
  bool trans_a, trans_b;
  int64_t m, n, k, lda, ldb, ldc;
  uint32_t align_a, align_b, align_c;
  cublasLtEpilogue_t epilogue;
  bool operator<(const AlgoClass& o) const {
    return std::tie(type, c_type, trans_a, trans_b, m, n, k, lda, ldb, ldc, align_a, align_b,
                    align_c, epilogue) < std::tie(o.type, o.c_type, o.trans_a, o.trans_b, o.m, o.n,
                                                  o.k, o.lda, o.ldb, o.ldc, o.align_a, o.align_b,
                                                  o.align_c, o.epilogue);
  }
};

// The smallest of 16, 20, 24, 28, 32, 40, ... (four steps per octave) that is at least x: a class
// runs problems at most 25% smaller than the one its algorithm was chosen for.
int64_t size_class(int64_t x) {
  int64_t octave = 16;
  while (octave * 2 <= x) octave *= 2;
  for (int64_t quarter = 0; quarter <= 4; ++quarter)
    if (octave + quarter * octave / 4 >= x) return octave + quarter * octave / 4;
  return 2 * octave;
}

std::optional<cublasLtMatmulAlgo_t> class_algo(const BlasHandles& h, const AlgoClass& key) {
  static std::mutex mutex;
  static std::map<std::pair<cublasLtHandle_t, AlgoClass>, std::optional<cublasLtMatmulAlgo_t>>
      algos;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto found = algos.find({h.lt, key});
  if (found != algos.end()) return found->second;
  // The class's largest problem; leading dimensions at least its rows.
  LtMatmul mm;
  describe(mm, key.type, key.c_type, key.trans_a, key.trans_b, key.m, key.n, key.k,
           std::max(key.lda, key.trans_a ? key.m : key.k),
           std::max(key.ldb, key.trans_b ? key.k : key.n), std::max(key.ldc, key.n), key.epilogue,
           nullptr);
  const std::optional<cublasLtMatmulAlgo_t> algo =
      best_algo(h, mm, key.align_a, key.align_b, key.align_c);
  algos.emplace(std::make_pair(h.lt, key), algo);
  return algo;
}

// Runs the problem with its class's algorithm; false when there is none or cuBLASLt cannot run
// it with that one (the caller falls back).
template <typename T, typename C>
bool class_matmul(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
                  int64_t n, int64_t k, float alpha, const T* a, int64_t lda, const T* b,
                  int64_t ldb, float beta, C* c, int64_t ldc, cublasLtEpilogue_t epilogue,
                  const void* bias) {
  constexpr cudaDataType_t type = data_type<T>(), c_type = data_type<C>();
  const AlgoClass key{
      type, c_type, trans_a,         trans_b,         size_class(m),   n,       size_class(k), lda,
      ldb,  ldc,    alignment_of(a), alignment_of(b), alignment_of(c), epilogue};
  const std::optional<cublasLtMatmulAlgo_t> algo = class_algo(h, key);
  if (!algo) return false;
  LtMatmul mm;
  describe(mm, type, c_type, trans_a, trans_b, m, n, k, lda, ldb, ldc, epilogue, bias);
  return cublasLtMatmul(h.lt, mm.desc, &alpha, b, mm.a, a, mm.b, &beta, c, mm.c, c, mm.c, &*algo,
                        h.workspace, h.workspace_bytes, stream) == CUBLAS_STATUS_SUCCESS;
}

}  // namespace

template <typename T, typename C>
void gemm(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
          int64_t n, int64_t k, float alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
          float beta, C* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  constexpr cudaDataType_t type = data_type<T>(), c_type = data_type<C>();
  if (k > 0 && class_matmul(h, stream, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                            ldc, CUBLASLT_EPILOGUE_DEFAULT, nullptr))
    return;
  LATTE_CUBLAS_CHECK(cublasSetStream(h.blas, stream));
  LATTE_CUBLAS_CHECK(cublasGemmEx(h.blas, op(trans_b), op(trans_a), to_int(n, "n"), to_int(m, "m"),
                                  to_int(k, "k"), &alpha, b, type, to_int(ldb, "ldb"), a, type,
                                  to_int(lda, "lda"), &beta, c, c_type, to_int(ldc, "ldc"),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <typename T, typename C>
void gemm_batched(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b,
                  int64_t batch, int64_t m, int64_t n, int64_t k, float alpha, const T* a,
                  int64_t lda, int64_t stride_a, const T* b, int64_t ldb, int64_t stride_b,
                  float beta, C* c, int64_t ldc, int64_t stride_c) {
  if (batch == 0 || m == 0 || n == 0) return;
  if (batch == 1) {  // the matrix products of linear's backward: cuBLASLt, as gemm runs them
    gemm(h, stream, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  constexpr cudaDataType_t type = data_type<T>(), c_type = data_type<C>();
  LATTE_CUBLAS_CHECK(cublasSetStream(h.blas, stream));
  LATTE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h.blas, op(trans_b), op(trans_a), to_int(n, "n"), to_int(m, "m"), to_int(k, "k"), &alpha, b,
      type, to_int(ldb, "ldb"), stride_b, a, type, to_int(lda, "lda"), stride_a, &beta, c, c_type,
      to_int(ldc, "ldc"), stride_c, to_int(batch, "batch"), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT));
}

template <typename T>
void gemm_bias(const BlasHandles& h, cudaStream_t stream, bool trans_a, bool trans_b, int64_t m,
               int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
               const T* bias, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k > 0 && class_matmul(h, stream, trans_a, trans_b, m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc,
                            CUBLASLT_EPILOGUE_BIAS, bias))
    return;
  gemm(h, stream, trans_a, trans_b, m, n, k, 1.f, a, lda, b, ldb, 0.f, c, ldc);
  constexpr int kThreads = 256;
  add_bias_kernel<<<grid_for(m * n, kThreads), kThreads, 0, stream>>>(device_ptr(c), ldc,
                                                                      device_ptr(bias), m, n);
  LATTE_CUDA_CHECK_LAUNCH();
}

#define LATTE_GEMM(T, C)                                                                           \
  template void gemm<T, C>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t,         \
                           int64_t, float, const T*, int64_t, const T*, int64_t, float, C*,        \
                           int64_t);                                                               \
  template void gemm_batched<T, C>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t, \
                                   int64_t, int64_t, float, const T*, int64_t, int64_t, const T*,  \
                                   int64_t, int64_t, float, C*, int64_t, int64_t);
LATTE_GEMM(float, float)
LATTE_GEMM(latte::bf16, latte::bf16)
LATTE_GEMM(latte::bf16, float)
#undef LATTE_GEMM

template void gemm_bias<float>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t,
                               int64_t, const float*, int64_t, const float*, int64_t, const float*,
                               float*, int64_t);
template void gemm_bias<latte::bf16>(const BlasHandles&, cudaStream_t, bool, bool, int64_t, int64_t,
                                     int64_t, const latte::bf16*, int64_t, const latte::bf16*,
                                     int64_t, const latte::bf16*, latte::bf16*, int64_t);

}  // namespace latte::kernels::cuda
