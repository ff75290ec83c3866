// Learning-rate schedule: linear warmup from 0 to the peak over `warmup_steps`, then cosine
// decay to `min_lr` at `total_steps` (constant min_lr afterwards).
#pragma once

#include <cstdint>

namespace latte {

struct LrSchedule {
  double peak_lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // Learning rate of optimizer step `step` (0-based).
  double at(int64_t step) const;
};

}  // namespace latte
