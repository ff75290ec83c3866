// RoPE tables as tensors, computed once per sequence length and reused by every layer (the
// frequencies of models/rope_tables.h; for dynamic NTK they depend on the length). Tables are in
// the model's parameter dtype (fp32 also when activations run in bf16) and live where the
// activations do.
#pragma once

#include <map>

#include "engine/tensor.h"
#include "models/config.h"

namespace latte {

struct RopeTableTensors {
  Tensor cos, sin;  // [length, dim / 2]
};

class RopeCache {
 public:
  RopeCache(const RopeConfig& rope, int64_t dim, int64_t max_position_embeddings, DType dtype)
      : rope_(rope), dim_(dim), max_position_embeddings_(max_position_embeddings), dtype_(dtype) {}

  // Tables covering positions [0, length), next to `activations` (on its device).
  const RopeTableTensors& get(int64_t length, const Tensor& activations);

 private:
  RopeConfig rope_;
  int64_t dim_, max_position_embeddings_;
  DType dtype_;
  std::map<std::pair<int64_t, Device>, RopeTableTensors> tables_;
};

}  // namespace latte
