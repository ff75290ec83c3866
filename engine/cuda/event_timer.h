// The profiler's device timer on CUDA (engine/profiler.h), registered by the runtime's init():
// each mark records a CUDA event on latte's stream; take_intervals() waits for the last event and
// returns cudaEventElapsedTime between consecutive ones. The events come from a pool that grows
// to the most marks ever taken between two reads and is reused after each read, so a long
// profiled run creates no events after its first step.
#pragma once

#include <cuda_runtime_api.h>

#include <string>
#include <vector>

#include "engine/profiler.h"

namespace latte::cuda {

class EventTimer final : public profiler::Timer {
 public:
  explicit EventTimer(cudaStream_t stream) : stream_(stream) {}
  ~EventTimer() override;
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;

  void mark() noexcept override;
  std::vector<double> take_intervals() override;
  // Events created so far (the pool's size).
  size_t pool_size() const { return pool_.size(); }

 private:
  cudaStream_t stream_;
  std::vector<cudaEvent_t> pool_;
  size_t marks_ = 0;   // marks since the last read: events pool_[0, marks_)
  std::string error_;  // the first failed CUDA call of a mark since the last read
};

}  // namespace latte::cuda
