// Helpers shared by the CPU attention kernels: a row-major BLAS GEMM overloaded on float and
// double (the kernels multiply strided sub-matrices of q/k/v/o in place), a scope that keeps BLAS
// single-threaded while the kernels' own OpenMP threads each run GEMMs, and the size below which
// a problem runs on one thread.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/attention.h"

namespace latte::kernels::cpu::detail {

// Whether a problem is worth OpenMP threads: below about 2^18 multiply-adds of score and output
// products (tens of microseconds) waking the team costs more than it saves, and on a busy machine
// far more. Results do not depend on the choice.
inline bool worth_threads(const AttentionProblem& p) {
  return p.batch * p.q_heads * p.q_len * p.kv_len * (p.qk_dim + p.v_dim) >= (int64_t(1) << 18);
}

// The leading dimension BLAS is given for a [rows, cols] matrix whose rows are `stride` apart.
// With a single row the stride is never used, but BLAS still requires ld >= cols.
inline int64_t leading_dim(int64_t stride, int64_t cols) {
  return std::max<int64_t>(stride, cols);
}

// OpenBLAS built on pthreads starts its own threads for every large GEMM even when called from an
// OpenMP thread, so the cores are oversubscribed many times over (tile loops ran 10x slower). The
// attention kernels parallelize over heads and tiles themselves, so while one runs this scope sets
// OpenBLAS to one thread and restores the previous count after. An OpenMP-built OpenBLAS already
// runs single-threaded inside parallel regions and is left alone. The count is process-wide: the
// kernels are not meant to run concurrently with other BLAS users.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas()
      : saved_threads_(openblas_get_parallel() == 1 ? openblas_get_num_threads() : 1) {
    if (saved_threads_ > 1) openblas_set_num_threads(1);
  }
  ~SingleThreadedBlas() {
    if (saved_threads_ > 1) openblas_set_num_threads(saved_threads_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_threads_;
};

// C = alpha * op(A) * op(B) + beta * C, row-major, leading dimensions in elements. beta == 0
// overwrites C without reading it.
inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                 int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                 const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
                 int64_t ldc) {
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

}  // namespace latte::kernels::cpu::detail
