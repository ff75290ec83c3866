#include "engine/cuda/cuda_id_check.h"

#include "engine/cuda/cuda_runtime.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/id_check.cuh"

namespace latte::cuda {

namespace {

constexpr uint64_t kNoBadId = ~uint64_t(0);

}  // namespace

void IdCheck::ensure_created() {
  if (device_words_ != nullptr) return;
  // Kept for the life of the process, like the runtime's handles: releasing CUDA resources during
  // static destruction, after the driver may have shut down, is not safe.
  void* device = nullptr;
  void* host = nullptr;
  LATTE_CUDA_CHECK(cudaMalloc(&device, kSlots * sizeof(uint64_t)));
  LATTE_CUDA_CHECK(cudaMallocHost(&host, kSlots * sizeof(uint64_t)));
  for (Slot& slot : slots_)
    LATTE_CUDA_CHECK(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming));
  device_words_ = static_cast<uint64_t*>(device);
  host_words_ = static_cast<uint64_t*>(host);
}

void IdCheck::report(size_t slot) {
  Slot& s = slots_[slot];
  s.pending = false;
  const uint64_t word = host_words_[slot];
  LATTE_CHECK(word == kNoBadId) << s.op << ": id " << kernels::cuda::bad_id_value(word)
                                << " at flat position " << kernels::cuda::bad_id_position(word)
                                << " is outside [0, " << s.vocab
                                << ") (found on the GPU by the check of an earlier call)";
}

Tensor IdCheck::sanitize(const char* op, const Tensor& ids, int64_t vocab,
                         std::optional<int64_t> ignored, int32_t replacement) {
  std::lock_guard<std::mutex> lock(mutex_);
  ensure_created();
  // Every completed check, oldest first (slot next_ is the oldest).
  for (size_t k = 0; k < kSlots; ++k) {
    const size_t slot = (next_ + k) % kSlots;
    if (!slots_[slot].pending) continue;
    const cudaError_t state = cudaEventQuery(slots_[slot].copied);
    if (state == cudaErrorNotReady) continue;
    LATTE_CUDA_CHECK(state);
    report(slot);
  }
  Slot& s = slots_[next_];
  if (s.pending) {  // kSlots checks ago and still running: the device is far behind, wait for it
    LATTE_CUDA_CHECK(cudaEventSynchronize(s.copied));
    report(next_);
  }
  Tensor safe = Tensor::empty(ids.shape(), DType::I32, Device::CUDA);
  uint64_t* word = device_words_ + next_;
  LATTE_CUDA_CHECK(cudaMemsetAsync(word, 0xff, sizeof(uint64_t), stream()));
  kernels::cuda::sanitize_ids(ids.data<int32_t>(), safe.data<int32_t>(), ids.numel(), vocab,
                              ignored.has_value(), ignored.value_or(0), replacement, word,
                              stream());
  LATTE_CUDA_CHECK(cudaMemcpyAsync(host_words_ + next_, word, sizeof(uint64_t),
                                   cudaMemcpyDeviceToHost, stream()));
  LATTE_CUDA_CHECK(cudaEventRecord(s.copied, stream()));
  s.op = op;
  s.vocab = vocab;
  s.pending = true;
  next_ = (next_ + 1) % kSlots;
  return safe;
}

}  // namespace latte::cuda
