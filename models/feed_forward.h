// The feed-forward slot of a decoder layer: a dense SwiGLU MLP or a DeepSeekMoE layer.
#pragma once

#include "engine/module.h"
#include "models/forward_context.h"

namespace latte {

class FeedForward : public Module {
 public:
  // x [B, T, d] -> [B, T, d]; MoE layers add their balance losses and statistics to ctx.
  virtual Tensor forward(const Tensor& x, ForwardContext& ctx) = 0;
};

}  // namespace latte
