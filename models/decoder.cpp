#include "models/decoder.h"

#include "engine/ops.h"
#include "models/mlp.h"
#include "models/moe.h"

namespace latte {

std::unique_ptr<FeedForward> make_feed_forward(const ModelConfig& config, int64_t layer_index,
                                               const InitContext& init) {
  if (config.is_moe_layer(layer_index))
    return std::make_unique<MoeLayer>(config.hidden_size, *config.moe,
                                      "model.layers." + std::to_string(layer_index) + ".mlp", init);
  return std::make_unique<SwiGluMlp>(config.hidden_size, config.intermediate_size, init);
}

DecoderLayer::DecoderLayer(const ModelConfig& config, int64_t layer_index,
                           const InitContext& init) {
  self_attn_ = &register_module("self_attn", make_attention(config, init));
  mlp_ = &register_module("mlp", make_feed_forward(config, layer_index, init));
  input_layernorm_ = &register_module(
      "input_layernorm", std::make_unique<RMSNorm>(config.hidden_size, config.rms_norm_eps, init));
  post_attention_layernorm_ =
      &register_module("post_attention_layernorm",
                       std::make_unique<RMSNorm>(config.hidden_size, config.rms_norm_eps, init));
}

Tensor DecoderLayer::forward(const Tensor& h, RopeCache& rope, ForwardContext& ctx) {
  const Tensor a = ops::add(h, self_attn_->forward(input_layernorm_->forward(h), rope));
  return ops::add(a, mlp_->forward(post_attention_layernorm_->forward(a), ctx));
}

}  // namespace latte
