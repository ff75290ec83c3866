#include "engine/cuda/pinned_download.h"

#include "engine/cuda/cuda_runtime.h"
#include "kernels/cuda/cuda_check.h"

namespace latte::cuda {

namespace {

// Clears the busy flag when the download returns or throws.
struct BusyGuard {
  std::atomic<bool>& busy;
  ~BusyGuard() { busy.store(false); }
};

}  // namespace

std::vector<int64_t> PinnedDownload::download(const Tensor& values,
                                              const std::function<void()>& meanwhile) {
  LATTE_CHECK(values.device() == Device::CUDA && values.dtype() == DType::I64 &&
              values.is_contiguous())
      << "pinned download: expects contiguous i64 values on the GPU, got " << values.describe();
  LATTE_CHECK(!busy_.exchange(true))
      << "pinned download: called again before an earlier download returned (work issued while "
         "counts are in flight must not wait for counts itself)";
  const BusyGuard guard{busy_};
  const auto n = static_cast<size_t>(values.numel());
  // Kept for the life of the process, like the runtime's handles (releasing CUDA resources during
  // static destruction is not safe); a larger request replaces the buffer (nothing is in flight).
  if (copied_ == nullptr)
    LATTE_CUDA_CHECK(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming));
  if (n > capacity_) {
    if (host_ != nullptr) LATTE_CUDA_CHECK(cudaFreeHost(host_));
    host_ = nullptr;
    capacity_ = 0;
    void* pinned = nullptr;
    LATTE_CUDA_CHECK(cudaMallocHost(&pinned, n * sizeof(int64_t)));
    host_ = static_cast<int64_t*>(pinned);
    capacity_ = n;
  }
  LATTE_CUDA_CHECK(cudaMemcpyAsync(host_, values.raw_data(), n * sizeof(int64_t),
                                   cudaMemcpyDeviceToHost, stream()));
  LATTE_CUDA_CHECK(cudaEventRecord(copied_, stream()));
  if (meanwhile) {
    try {
      meanwhile();
    } catch (...) {
      (void)cudaEventSynchronize(copied_);  // the copy lands before the buffer can be reused
      throw;
    }
  }
  LATTE_CUDA_CHECK(cudaEventSynchronize(copied_));
  return std::vector<int64_t>(host_, host_ + n);
}

}  // namespace latte::cuda
