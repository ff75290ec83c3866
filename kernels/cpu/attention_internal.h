// Helpers shared by the CPU attention kernels: the size below which a problem runs on one
// thread, and the leading dimension BLAS is given for strided sub-matrices of q/k/v/o. (GEMMs
// inside the kernels' OpenMP loops run single-threaded: latte links OpenBLAS's OpenMP build.)
#pragma once

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

// The leading dimensions of q, k, v and o (rows = tokens of one head) for BLAS.
struct LeadingDims {
  int64_t q, k, v, o;
};
inline LeadingDims leading_dims(const AttentionProblem& p) {
  return {leading_dim(p.q.token_stride, p.qk_dim), leading_dim(p.k.token_stride, p.qk_dim),
          leading_dim(p.v.token_stride, p.v_dim), leading_dim(p.o.token_stride, p.v_dim)};
}

}  // namespace latte::kernels::cpu::detail
