#include "engine/cuda/event_timer.h"

#include "kernels/cuda/cuda_check.h"

namespace latte::cuda {

EventTimer::~EventTimer() {
  // At process exit the driver may already be gone; errors are ignored.
  for (cudaEvent_t e : pool_) (void)cudaEventDestroy(e);
}

void EventTimer::mark() noexcept {
  try {
    if (marks_ == pool_.size()) {
      cudaEvent_t e = nullptr;
      LATTE_CUDA_CHECK(cudaEventCreate(&e));
      pool_.push_back(e);
    }
    LATTE_CUDA_CHECK(cudaEventRecord(pool_[marks_], stream_));
    ++marks_;
  } catch (const std::exception& e) {
    if (error_.empty()) error_ = e.what();
  }
}

std::vector<double> EventTimer::take_intervals() {
  const size_t n = marks_;
  const std::string error = std::move(error_);
  marks_ = 0;
  error_.clear();
  LATTE_CHECK(error.empty()) << "profiler (CUDA events): " << error;
  std::vector<double> out;
  if (n == 0) return out;
  LATTE_CUDA_CHECK(cudaEventSynchronize(pool_[n - 1]));
  for (size_t i = 1; i < n; ++i) {
    float ms = 0;
    LATTE_CUDA_CHECK(cudaEventElapsedTime(&ms, pool_[i - 1], pool_[i]));
    out.push_back(1e-3 * ms);
  }
  return out;
}

}  // namespace latte::cuda
