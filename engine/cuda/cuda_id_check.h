// Checks of token ids on the GPU that never wait for the device: each check hands the kernels a
// sanitized copy of the ids (kernels/cuda/id_check.cuh) and copies the first bad id back to pinned
// host memory behind an event; a later check reports it as a latte::Error once the event has
// completed. The GPU thus never reads outside a table, and a bad id is reported by the next
// embedding or cross_entropy call after the device has reached the faulty one (typically the
// next step).
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>

#include "engine/tensor.h"

namespace latte::cuda {

class IdCheck {
 public:
  IdCheck() = default;
  IdCheck(const IdCheck&) = delete;
  IdCheck& operator=(const IdCheck&) = delete;

  // Throws for a bad id found by an earlier check, then returns a contiguous copy of `ids` (i32
  // on the GPU) in which every id outside [0, vocab) that is not `ignored` is `replacement`. `op`
  // (a string literal) names the op in the error.
  Tensor sanitize(const char* op, const Tensor& ids, int64_t vocab, std::optional<int64_t> ignored,
                  int32_t replacement);

 private:
  // One check in flight: its result word on the device and in pinned host memory, the event
  // after the copy between them, and what the error message names.
  struct Slot {
    cudaEvent_t copied = nullptr;
    const char* op = nullptr;
    int64_t vocab = 0;
    bool pending = false;
  };
  // Checks in flight at once; a slot is reused after this many later checks, by which time its
  // copy has long completed (training runs a few checks per step).
  static constexpr size_t kSlots = 8;

  void ensure_created();
  // Throws when the slot's completed check found a bad id; clears `pending` once read.
  void report(size_t slot);

  std::mutex mutex_;
  std::array<Slot, kSlots> slots_;
  uint64_t* device_words_ = nullptr;  // kSlots words on the GPU
  uint64_t* host_words_ = nullptr;    // kSlots words of pinned host memory
  size_t next_ = 0;
};

}  // namespace latte::cuda
