// Embedding lookup: out[i] = weight[ids[i]]. Backward scatters rows of dout into dweight;
// repeated ids accumulate. Deterministic: columns are split among threads and each column
// visits the tokens in order.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

template <typename T>
void embedding_forward(const int32_t* ids, const T* weight, T* out, int64_t n, int64_t dim);

// OVERWRITES dweight ([vocab, dim]) with the accumulated gradient.
template <typename T>
void embedding_backward(const int32_t* ids, const T* dout, T* dweight, int64_t n, int64_t vocab,
                        int64_t dim);

}  // namespace latte::kernels::cpu
