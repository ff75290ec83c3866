// Fused log-softmax + negative log-likelihood over the last dimension (vocabulary).
// Forward keeps only the per-row logsumexp, never the probabilities; backward recomputes
// softmax from it: dlogits = scale * (exp(logit - lse) - onehot(target)), scale = dloss / count.
// Rows whose target equals ignore_index contribute nothing.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

// Returns the SUM of -log p(target) over counted rows; writes lse per row and the number of
// counted rows.
template <typename T>
double cross_entropy_forward(const T* logits, const int32_t* targets, T* lse, int64_t rows,
                             int64_t vocab, int64_t ignore_index, int64_t* counted);

// dlogits = scale * (softmax - onehot) on counted rows, 0 on ignored rows.
template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const T* lse, T scale,
                            T* dlogits, int64_t rows, int64_t vocab, int64_t ignore_index);

}  // namespace latte::kernels::cpu
