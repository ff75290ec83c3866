// One pre-norm decoder block (SPEC §4): h += attn(input_layernorm(h));
// h += mlp(post_attention_layernorm(h)). The MLP slot is dense or MoE by the layer rule of §3.
#pragma once

#include <memory>

#include "models/attention.h"
#include "models/feed_forward.h"

namespace latte {

class DecoderLayer : public Module {
 public:
  DecoderLayer(const ModelConfig& config, int64_t layer_index, const InitContext& init);
  Tensor forward(const Tensor& h, RopeCache& rope, ForwardContext& ctx);
  FeedForward& mlp() { return *mlp_; }

 private:
  RMSNorm* input_layernorm_;
  AttentionBlock* self_attn_;
  RMSNorm* post_attention_layernorm_;
  FeedForward* mlp_;
};

// Dense SwiGLU MLP of intermediate_size, or a DeepSeekMoE layer, for layer `layer_index`.
std::unique_ptr<FeedForward> make_feed_forward(const ModelConfig& config, int64_t layer_index,
                                               const InitContext& init);

}  // namespace latte
