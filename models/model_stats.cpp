#include "models/model_stats.h"

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace latte {

namespace {

// Parameters of a block and how many of them are matmul weights (2 FLOPs per token each).
struct Count {
  int64_t params = 0;
  int64_t matmul = 0;

  Count operator+(const Count& other) const {
    return {params + other.params, matmul + other.matmul};
  }
  Count operator*(int64_t n) const { return {params * n, matmul * n}; }
};

Count linear(int64_t in, int64_t out, bool bias) {
  return {in * out + (bias ? out : 0), in * out};
}

Count rms_norm(int64_t dim) {
  return {dim, 0};
}

Count swiglu(int64_t hidden, int64_t intermediate) {
  return linear(hidden, intermediate, false) * 2 + linear(intermediate, hidden, false);
}

Count attention_block(const ModelConfig& config) {
  const AttentionConfig& a = config.attention;
  const int64_t d = config.hidden_size;
  const int64_t h = a.num_attention_heads;
  const bool bias = a.attention_bias;
  if (a.type == AttentionType::kMha) {
    return linear(d, h * a.head_dim, bias) +
           linear(d, a.num_key_value_heads * a.head_dim, bias) * 2 +
           linear(h * a.head_dim, d, bias);
  }
  Count query = a.q_lora_rank > 0 ? linear(d, a.q_lora_rank, bias) + rms_norm(a.q_lora_rank) +
                                        linear(a.q_lora_rank, h * a.qk_head_dim(), false)
                                  : linear(d, h * a.qk_head_dim(), bias);
  return query + linear(d, a.kv_lora_rank + a.qk_rope_head_dim, bias) + rms_norm(a.kv_lora_rank) +
         linear(a.kv_lora_rank, h * (a.qk_nope_head_dim + a.v_head_dim), false) +
         linear(h * a.v_head_dim, d, bias);
}

// A decoder block: everything it holds, and what one token runs through.
struct BlockCount {
  Count total;
  Count active;
};

BlockCount decoder_block(const ModelConfig& config, int64_t layer) {
  const int64_t d = config.hidden_size;
  const Count common = attention_block(config) + rms_norm(d) * 2;
  if (!config.is_moe_layer(layer)) {
    const Count mlp = common + swiglu(d, config.intermediate_size);
    return {mlp, mlp};
  }
  const MoeConfig& moe = *config.moe;
  const Count router = linear(d, moe.n_routed_experts, false);
  const Count expert = swiglu(d, moe.moe_intermediate_size);
  const Count shared = moe.n_shared_experts > 0
                           ? swiglu(d, moe.n_shared_experts * moe.moe_intermediate_size)
                           : Count{};
  return {common + router + shared + expert * moe.n_routed_experts,
          common + router + shared + expert * moe.num_experts_per_tok};
}

}  // namespace

ModelStats compute_model_stats(const ModelConfig& config, int64_t seq_len) {
  LATTE_CHECK(seq_len >= 1) << "model stats: seq_len must be >= 1, got " << seq_len;
  const int64_t d = config.hidden_size;
  const int64_t vocab = config.vocab_size;
  const AttentionConfig& a = config.attention;

  // The embedding is a lookup (no matmul); the lm_head, tied or not, is a matmul.
  const Count embedding{vocab * d, 0};
  const Count head = config.tie_word_embeddings ? Count{0, vocab * d} : linear(d, vocab, false);
  Count total = embedding + head + rms_norm(d);
  Count active = total;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    const BlockCount block = decoder_block(config, l);
    total = total + block.total;
    active = active + block.active;
  }

  int64_t mtp = 0;
  int64_t mtp_matmul = 0;  // per token, through every MTP module
  for (int64_t m = 0; m < config.mtp.num_layers; ++m) {
    const BlockCount block = decoder_block(config, config.num_hidden_layers + m);
    mtp += block.total.params + (rms_norm(d) * 3 + linear(2 * d, d, false)).params;
    mtp_matmul += block.active.matmul + linear(2 * d, d, false).matmul + vocab * d;
  }

  const bool mla = a.type == AttentionType::kMla;
  const int64_t qk_head_dim = mla ? a.qk_head_dim() : a.head_dim;
  const int64_t v_head_dim = mla ? a.v_head_dim : a.head_dim;
  const double causal_context = static_cast<double>(seq_len + 1) / 2.0;
  const double attention_flops_per_layer = 2.0 * static_cast<double>(a.num_attention_heads) *
                                           static_cast<double>(qk_head_dim + v_head_dim) *
                                           causal_context;

  const int64_t cached_per_layer =
      mla ? a.kv_lora_rank + a.qk_rope_head_dim : 2 * a.num_key_value_heads * a.head_dim;

  ModelStats stats;
  stats.params_total = total.params;
  stats.params_mtp = mtp;
  stats.params_active = active.params;
  stats.attention_params_per_layer = attention_block(config).params;
  stats.flops_per_token = 2.0 * static_cast<double>(active.matmul) +
                          attention_flops_per_layer * static_cast<double>(config.num_hidden_layers);
  stats.mtp_flops_per_token =
      2.0 * static_cast<double>(mtp_matmul) +
      attention_flops_per_layer * static_cast<double>(config.mtp.num_layers);
  stats.kv_cache_bytes_per_token =
      cached_per_layer * config.num_hidden_layers * kKvCacheElementBytes;
  stats.seq_len = seq_len;
  return stats;
}

int64_t per_head_kv_cache_bytes_per_token(const ModelConfig& config) {
  const AttentionConfig& a = config.attention;
  const int64_t per_head =
      a.type == AttentionType::kMla ? a.qk_head_dim() + a.v_head_dim : 2 * a.head_dim;
  return a.num_attention_heads * per_head * config.num_hidden_layers * kKvCacheElementBytes;
}

nlohmann::json model_stats_to_json(const ModelStats& stats) {
  return {{"params_total", stats.params_total},
          {"params_active", stats.params_active},
          {"params_mtp", stats.params_mtp},
          {"attention_params_per_layer", stats.attention_params_per_layer},
          {"flops_per_token", stats.flops_per_token},
          {"mtp_flops_per_token", stats.mtp_flops_per_token},
          {"kv_cache_bytes_per_token", stats.kv_cache_bytes_per_token},
          {"seq_len", stats.seq_len}};
}

}  // namespace latte
