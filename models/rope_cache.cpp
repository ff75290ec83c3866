#include "models/rope_cache.h"

#include "models/rope_tables.h"

namespace latte {

const RopeTableTensors& RopeCache::get(int64_t length) {
  auto it = tables_.find(length);
  if (it != tables_.end()) return it->second;
  const RopeTables t = make_rope_tables(rope_, dim_, length, max_position_embeddings_);
  const Shape shape{length, dim_ / 2};
  RopeTableTensors tensors{Tensor::from_vector(t.cos, shape, dtype_),
                           Tensor::from_vector(t.sin, shape, dtype_)};
  return tables_.emplace(length, std::move(tensors)).first->second;
}

}  // namespace latte
