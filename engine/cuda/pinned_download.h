// Small device-to-host downloads that do not wait for the whole stream: the values are copied
// asynchronously on latte's stream into pinned host memory kept for the process, and the host
// waits for that copy alone (an event), so work issued after the copy and before the wait keeps
// the device busy while the host waits. What the MoE dispatch uses for the counts its expert
// GEMMs need on the host.
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/tensor.h"

namespace latte::cuda {

class PinnedDownload {
 public:
  PinnedDownload() = default;
  PinnedDownload(const PinnedDownload&) = delete;
  PinnedDownload& operator=(const PinnedDownload&) = delete;

  // The values of `values` (i64, contiguous, on the GPU) as the stream produces them; meanwhile()
  // (when set) is called after the copy is issued and before the host waits for it. Throws
  // latte::Error when called again before an earlier download has returned (from meanwhile, or
  // from another thread): the pinned buffer holds one download at a time.
  std::vector<int64_t> download(const Tensor& values, const std::function<void()>& meanwhile);

 private:
  std::atomic<bool> busy_{false};
  int64_t* host_ = nullptr;  // pinned, capacity_ values
  size_t capacity_ = 0;
  cudaEvent_t copied_ = nullptr;
};

}  // namespace latte::cuda
