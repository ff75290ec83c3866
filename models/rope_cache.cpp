#include "models/rope_cache.h"

#include "models/rope_tables.h"

namespace latte {

const RopeTableTensors& RopeCache::get(int64_t length, const Tensor& activations) {
  const auto key = std::make_pair(length, activations.device());
  auto it = tables_.find(key);
  if (it != tables_.end()) return it->second;
  const RopeTables t = make_rope_tables(rope_, dim_, length, max_position_embeddings_);
  const Shape shape{length, dim_ / 2};
  RopeTableTensors tensors{Tensor::from_vector(t.cos, shape, dtype_).to(key.second),
                           Tensor::from_vector(t.sin, shape, dtype_).to(key.second)};
  return tables_.emplace(key, std::move(tensors)).first->second;
}

}  // namespace latte
