#include "models/attention.h"

#include <cmath>

#include "models/rope_tables.h"

namespace latte {

namespace {

ops::AttentionKernel kernel_of(AttentionImpl impl) {
  return impl == AttentionImpl::kFlash ? ops::AttentionKernel::kFlash
                                       : ops::AttentionKernel::kNaive;
}

}  // namespace

int64_t rope_dim(const AttentionConfig& a) {
  return a.type == AttentionType::kMla ? a.qk_rope_head_dim : a.head_dim;
}

MultiHeadLatentAttention::MultiHeadLatentAttention(const ModelConfig& config,
                                                   const InitContext& init)
    : cfg_(config.attention),
      softmax_scale_(mla_softmax_scale(config.rope, config.attention.qk_head_dim())) {
  const int64_t d = config.hidden_size, h = cfg_.num_attention_heads;
  const bool bias = cfg_.attention_bias;
  const double eps = config.rms_norm_eps;
  if (cfg_.q_lora_rank > 0) {
    q_a_proj_ =
        &register_module("q_a_proj", std::make_unique<Linear>(d, cfg_.q_lora_rank, bias, init));
    q_a_layernorm_ =
        &register_module("q_a_layernorm", std::make_unique<RMSNorm>(cfg_.q_lora_rank, eps, init));
    q_b_proj_ = &register_module(
        "q_b_proj",
        std::make_unique<Linear>(cfg_.q_lora_rank, h * cfg_.qk_head_dim(), false, init));
  } else {
    q_proj_ =
        &register_module("q_proj", std::make_unique<Linear>(d, h * cfg_.qk_head_dim(), bias, init));
  }
  kv_a_proj_with_mqa_ = &register_module(
      "kv_a_proj_with_mqa",
      std::make_unique<Linear>(d, cfg_.kv_lora_rank + cfg_.qk_rope_head_dim, bias, init));
  kv_a_layernorm_ =
      &register_module("kv_a_layernorm", std::make_unique<RMSNorm>(cfg_.kv_lora_rank, eps, init));
  kv_b_proj_ = &register_module(
      "kv_b_proj",
      std::make_unique<Linear>(cfg_.kv_lora_rank, h * (cfg_.qk_nope_head_dim + cfg_.v_head_dim),
                               false, init));
  o_proj_ =
      &register_module("o_proj", std::make_unique<Linear>(h * cfg_.v_head_dim, d, bias, init));
}

Tensor MultiHeadLatentAttention::forward(const Tensor& x, RopeCache& rope) const {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.num_attention_heads;
  const int64_t nope = cfg_.qk_nope_head_dim, rd = cfg_.qk_rope_head_dim, vd = cfg_.v_head_dim;
  const RopeTableTensors& tables = rope.get(T, x);

  // Queries: [q_nope | rope(q_pe)] per head, rotated in the projection's memory (rope takes over
  // the only reference to it).
  Tensor q = (q_proj_ ? q_proj_->forward(x)
                      : q_b_proj_->forward(q_a_layernorm_->forward(q_a_proj_->forward(x))))
                 .view({B, T, H, nope + rd});
  q = ops::rope(std::move(q), tables.cos, tables.sin, 0, cfg_.rope_interleave, nope);

  // Keys and values from the compressed latent c_kv and the one shared rope key k_pe.
  const Tensor kv_a = kv_a_proj_with_mqa_->forward(x);  // [B, T, kv_lora_rank + rd]
  const Tensor c_kv = kv_a.narrow(2, 0, cfg_.kv_lora_rank);
  const Tensor k_pe = ops::rope(kv_a.narrow(2, cfg_.kv_lora_rank, rd).unsqueeze(2), tables.cos,
                                tables.sin, 0, cfg_.rope_interleave);  // [B, T, 1, rd]
  const Tensor kv = kv_b_proj_->forward(kv_a_layernorm_->forward(c_kv)).view({B, T, H, nope + vd});
  const Tensor v = kv.narrow(3, nope, vd);  // a view: V is never copied or padded
  const Tensor k_pe_heads = ops::expand(k_pe, {B, T, H, rd});
  const Tensor k = nope > 0 ? ops::concat({kv.narrow(3, 0, nope), k_pe_heads}, 3) : k_pe_heads;

  const Tensor o = ops::attention(q, k, v, softmax_scale_, true, kernel_of(cfg_.impl));
  return o_proj_->forward(o.view({B, T, H * vd}));
}

MultiHeadAttention::MultiHeadAttention(const ModelConfig& config, const InitContext& init)
    : cfg_(config.attention) {
  const int64_t d = config.hidden_size, h = cfg_.num_attention_heads,
                kvh = cfg_.num_key_value_heads, hd = cfg_.head_dim;
  const bool bias = cfg_.attention_bias;
  q_proj_ = &register_module("q_proj", std::make_unique<Linear>(d, h * hd, bias, init));
  k_proj_ = &register_module("k_proj", std::make_unique<Linear>(d, kvh * hd, bias, init));
  v_proj_ = &register_module("v_proj", std::make_unique<Linear>(d, kvh * hd, bias, init));
  o_proj_ = &register_module("o_proj", std::make_unique<Linear>(h * hd, d, bias, init));
}

Tensor MultiHeadAttention::forward(const Tensor& x, RopeCache& rope) const {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.num_attention_heads,
                KVH = cfg_.num_key_value_heads, hd = cfg_.head_dim;
  const RopeTableTensors& tables = rope.get(T, x);
  // q and k rotated in their projections' memory (rope takes over the only reference to it).
  Tensor q = q_proj_->forward(x).view({B, T, H, hd});
  q = ops::rope(std::move(q), tables.cos, tables.sin, 0, cfg_.rope_interleave);
  Tensor k = k_proj_->forward(x).view({B, T, KVH, hd});
  k = ops::rope(std::move(k), tables.cos, tables.sin, 0, cfg_.rope_interleave);
  const Tensor v = v_proj_->forward(x).view({B, T, KVH, hd});
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const Tensor o = ops::attention(q, k, v, scale, true, kernel_of(cfg_.impl));
  return o_proj_->forward(o.view({B, T, H * hd}));
}

std::unique_ptr<AttentionBlock> make_attention(const ModelConfig& config, const InitContext& init) {
  if (config.attention.type == AttentionType::kMla)
    return std::make_unique<MultiHeadLatentAttention>(config, init);
  return std::make_unique<MultiHeadAttention>(config, init);
}

}  // namespace latte
