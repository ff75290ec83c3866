// Embedding lookup: out[i] = weight[ids[i]]. Backward scatters rows of dout into dweight;
// repeated ids accumulate. Deterministic: columns are split among threads and each column
// visits the tokens in order. The table may be wider than the rows it gives (W = double under
// T = float: the master weight of mixed precision): the forward rounds each looked-up row to T,
// the backward accumulates in W.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

template <typename W, typename T>
void embedding_forward(const int32_t* ids, const W* weight, T* out, int64_t n, int64_t dim);

// OVERWRITES dweight ([vocab, dim]) with the accumulated gradient.
template <typename T, typename W>
void embedding_backward(const int32_t* ids, const T* dout, W* dweight, int64_t n, int64_t vocab,
                        int64_t dim);

}  // namespace latte::kernels::cpu
