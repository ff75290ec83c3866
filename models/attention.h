// The attention blocks of a decoder layer: DeepSeek's Multi-head Latent Attention (SPEC §1) and
// the standard multi-head / grouped-query baseline. Both map x [B, T, d] to [B, T, d] and share
// one interface so a decoder layer holds either.
#pragma once

#include <memory>

#include "engine/ops.h"
#include "models/config.h"
#include "models/layers.h"
#include "models/rope_cache.h"

namespace latte {

class AttentionBlock : public Module {
 public:
  virtual Tensor forward(const Tensor& x, RopeCache& rope) const = 0;
};

class MultiHeadLatentAttention : public AttentionBlock {
 public:
  MultiHeadLatentAttention(const ModelConfig& config, const InitContext& init);
  Tensor forward(const Tensor& x, RopeCache& rope) const override;

 private:
  AttentionConfig cfg_;
  double softmax_scale_;
  Linear* q_proj_ = nullptr;  // q_lora_rank == 0
  Linear* q_a_proj_ = nullptr;
  RMSNorm* q_a_layernorm_ = nullptr;
  Linear* q_b_proj_ = nullptr;
  Linear* kv_a_proj_with_mqa_;
  RMSNorm* kv_a_layernorm_;
  Linear* kv_b_proj_;
  Linear* o_proj_;
};

class MultiHeadAttention : public AttentionBlock {
 public:
  MultiHeadAttention(const ModelConfig& config, const InitContext& init);
  Tensor forward(const Tensor& x, RopeCache& rope) const override;

 private:
  AttentionConfig cfg_;
  Linear* q_proj_;
  Linear* k_proj_;
  Linear* v_proj_;
  Linear* o_proj_;
};

std::unique_ptr<AttentionBlock> make_attention(const ModelConfig& config, const InitContext& init);

// The head dimension RoPE rotates: qk_rope_head_dim (MLA) or head_dim (MHA).
int64_t rope_dim(const AttentionConfig& attention);

}  // namespace latte
