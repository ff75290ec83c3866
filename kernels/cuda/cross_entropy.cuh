// Fused log-softmax + negative log-likelihood over the vocabulary on CUDA, the twin of
// kernels/cpu/cross_entropy.h. The forward keeps only the per-row logsumexp, never the
// probabilities; the backward recomputes them: dlogits = scale * (exp(logit - lse) - onehot).
// Rows whose target equals ignore_index contribute nothing.
// How it computes: one block per row runs an online logsumexp (each thread keeps a running max
// and a sum rescaled whenever the max grows, then the (max, sum) pairs are merged in a fixed tree)
// in one pass over the logits. The loss is then summed by a single block over the rows in a fixed
// order in double, so it is the same on every run. The backward is one block per row.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

// Writes lse per row (fp32) and, on the device, *loss_sum = the SUM of -log p(target) over the
// counted rows (double) and *counted = their number.
template <typename T>
void cross_entropy_forward(const T* logits, const int32_t* targets, float* lse, int64_t rows,
                           int64_t vocab, int64_t ignore_index, double* loss_sum, int64_t* counted,
                           cudaStream_t stream);

// dlogits = scale * (softmax - onehot) on counted rows, 0 on ignored rows. `scale` points to one
// fp32 value on the device (typically d loss / counted, computed there without a host sync).
template <typename T>
void cross_entropy_backward(const T* logits, const int32_t* targets, const float* lse,
                            const float* scale, T* dlogits, int64_t rows, int64_t vocab,
                            int64_t ignore_index, cudaStream_t stream);

}  // namespace latte::kernels::cuda
