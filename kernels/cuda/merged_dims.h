// The index space that two strided operands walk together over one shape, with its dimensions
// merged: size-1 dimensions drop out and a dimension folds into the one before it when both
// operands continue contiguously across the pair. Fewer dimensions mean less index arithmetic
// per element; a walk that merges into one dimension with unit strides is a dense one. Shared by
// the broadcasting binary ops (operands a and b; the output is contiguous, so it always merges),
// sum_to (its kept and its reduced dimensions) and the strided copy (source and destination).
// Host code; the struct is passed to kernels by value and walked by merged_walk.cuh.
#pragma once

#include <cstdint>

namespace latte::kernels::cuda {

inline constexpr int kMaxMergedRank = 6;

struct MergedDims {
  int rank = 0;
  int64_t shape[kMaxMergedRank];
  int64_t a_stride[kMaxMergedRank];
  int64_t b_stride[kMaxMergedRank];

  // Element i of the walk is element i of both operands.
  bool dense() const { return rank == 1 && a_stride[0] == 1 && b_stride[0] == 1; }
};

// rank <= kMaxMergedRank (callers check); a rank-0 or all-size-1 shape gives one element.
inline MergedDims merge_dims(const int64_t* shape, int rank, const int64_t* a_strides,
                             const int64_t* b_strides) {
  MergedDims g;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    const int last = g.rank - 1;
    if (last >= 0 && g.a_stride[last] == a_strides[d] * shape[d] &&
        g.b_stride[last] == b_strides[d] * shape[d]) {
      g.shape[last] *= shape[d];
      g.a_stride[last] = a_strides[d];
      g.b_stride[last] = b_strides[d];
      continue;
    }
    g.shape[g.rank] = shape[d];
    g.a_stride[g.rank] = a_strides[d];
    g.b_stride[g.rank] = b_strides[d];
    ++g.rank;
  }
  if (g.rank == 0) {  // a single element
    g.shape[0] = 1;
    g.a_stride[0] = g.b_stride[0] = 1;
    g.rank = 1;
  }
  return g;
}

}  // namespace latte::kernels::cuda
