// Validation of token ids on CUDA (embedding rows, cross-entropy targets) without a host sync:
// the ids the kernels read are a sanitized copy, and the first bad id is recorded on the device
// for the host to read back later.
// safe[i] = ids[i] when it lies in [0, vocab) or equals `ignored` (when has_ignored), else
// `replacement`; for the bad entries, *first_bad = min(*first_bad, i << 32 | uint32(ids[i])),
// i.e. the lowest bad position and its id whatever the scheduling (*first_bad is left alone when
// every id is valid; callers initialize it to UINT64_MAX).
// How it computes: a grid-stride loop, one id per thread step; bad ids (rare) do an atomicMin.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace latte::kernels::cuda {

// n must be below 2^32 (positions are packed into 32 bits).
void sanitize_ids(const int32_t* ids, int32_t* safe, int64_t n, int64_t vocab, bool has_ignored,
                  int64_t ignored, int32_t replacement, uint64_t* first_bad, cudaStream_t stream);

// The position and the id packed into a first_bad word.
inline int64_t bad_id_position(uint64_t first_bad) {
  return static_cast<int64_t>(first_bad >> 32);
}
inline int32_t bad_id_value(uint64_t first_bad) {
  return static_cast<int32_t>(static_cast<uint32_t>(first_bad & 0xffffffffu));
}

}  // namespace latte::kernels::cuda
