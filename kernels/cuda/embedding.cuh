// Embedding lookup on CUDA, the twin of kernels/cpu/embedding.h: out[i] = weight[ids[i]];
// backward dweight[v] = sum of dout[i] over the tokens i with ids[i] == v.
// How it computes: the forward is a grid-stride copy. The backward is deterministic and does
// O(tokens x dim) work plus writing dweight ([vocab, dim]), never tokens x vocab:
// (1) a stable LSD radix sort of the token positions by id, 8 bits per pass (1 pass up to vocab
//     255, 3 for 129k; ids outside [0, vocab) get the key vocab and sort last): per pass, one
//     block per chunk of 1024 tokens counts the chunk's digits, one block scans the counts into
//     each chunk's first rank per digit, and one block per chunk places its tokens, each warp
//     walking 128 consecutive tokens in order, 32 at a time (ranks within a step from
//     __match_any_sync, a running rank per digit). A token's rank counts the tokens of smaller
//     digits and the earlier tokens of its digit, so every pass is stable and after the last
//     one each id's tokens are in increasing position order;
// (2) one thread per id finds where its tokens start in the sorted keys (binary search);
// (3) one block per (vocabulary row, tile of 128 columns), one column per thread, adds its
//     tokens' dout rows in token order into an fp32 register and writes the row once, zeros when
//     no token has the id. The columns of a row are spread over dim threads, and each thread
//     issues the loads of its next 32 tokens before adding them in order (positions staged in
//     shared memory 128 at a time), so a row that takes most tokens (a skewed id distribution)
//     has 32 x dim loads in flight instead of one dependent load per token.
// Every row has one owner and the CPU's summation order: no float atomics (the only atomics count
// digits in shared memory) and bit-identical results run to run. The table may be fp32 under bf16
// rows (the master weight of mixed precision): the forward rounds the rows it copies, the
// backward stores its fp32 sums in the table's dtype.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cpu/bf16.h"

namespace latte::kernels::cuda {

template <typename W, typename T>
void embedding_forward(const int32_t* ids, const W* weight, T* out, int64_t n, int64_t dim,
                       cudaStream_t stream);

// Bytes of device workspace embedding_backward needs for n tokens and a vocab-row table.
int64_t embedding_backward_workspace_bytes(int64_t n, int64_t vocab);

// OVERWRITES dweight ([vocab, dim]) with the accumulated gradient; ids outside [0, vocab)
// contribute nothing (callers validate ids). workspace: embedding_backward_workspace_bytes(n,
// vocab) bytes of device memory. Throws latte::Error when n or vocab reach 2^31 or dim needs more
// than 65535 column tiles of 128.
template <typename T, typename W>
void embedding_backward(const int32_t* ids, const T* dout, W* dweight, int64_t n, int64_t vocab,
                        int64_t dim, void* workspace, cudaStream_t stream);

}  // namespace latte::kernels::cuda
