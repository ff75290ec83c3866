// Size and cost accounting of a model from its ModelConfig alone (no tensor is allocated):
// parameter counts (total, active per token, attention block, multi-token prediction), forward
// FLOPs per token and the bytes of the generation KV cache per token.
//
// Conventions
// - Parameters follow the module tree of SPEC §1, §3, §4 exactly: every weight, bias and norm
//   weight; the MoE correction bias is a buffer and is not counted; a tied lm_head is counted
//   once (as the embedding).
// - params_total and params_active exclude the MTP modules (DeepSeek-V3 publishes 671B / 37B
//   without them); params_mtp counts them on their own (their decoder block, enorm, hnorm,
//   eh_proj and shared_head.norm; the embedding and lm_head they share are not counted again).
// - params_active: every non-expert parameter (embeddings, lm_head, norms, attention, dense
//   MLPs, MoE routers) plus, in each MoE layer, num_experts_per_tok routed experts and the
//   shared experts.
// - flops_per_token: one forward pass of the main model (MTP excluded) for a token of a
//   sequence of seq_len tokens. A multiply-add is 2 FLOPs. Matmuls: 2 x the active weight
//   matrices (lm_head included; the embedding lookup, biases and norms are not matmuls).
//   Attention: per layer 2 x H x (qk_head_dim + v_head_dim) x (seq_len + 1) / 2, i.e. q·k and
//   p·v against the average causal context. Elementwise work (softmax, RoPE, SwiGLU, norms) is
//   not counted.
// - mtp_flops_per_token: one forward pass of the MTP modules for a token, counted the same way
//   (each module's decoder block, eh_proj and the shared lm_head, and its attention). A training
//   step runs both: its model FLOPs per token are 3 x (flops_per_token + mtp_flops_per_token).
// - kv_cache_bytes_per_token: bf16 (2 bytes) over all decoder layers. MLA caches the
//   compressed kv_lora_rank + qk_rope_head_dim values per layer (SPEC §1); MHA caches
//   2 x num_key_value_heads x head_dim.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>

#include "models/config.h"

namespace latte {

struct ModelStats {
  int64_t params_total = 0;
  int64_t params_mtp = 0;
  int64_t params_active = 0;
  int64_t attention_params_per_layer = 0;  // one layer's self_attn block
  double flops_per_token = 0;
  double mtp_flops_per_token = 0;
  int64_t kv_cache_bytes_per_token = 0;
  int64_t seq_len = 0;
};

// The bytes of one KV-cache entry (bf16).
inline constexpr int64_t kKvCacheElementBytes = 2;

// Errors (latte::Error) when seq_len < 1.
ModelStats compute_model_stats(const ModelConfig& config, int64_t seq_len);

// The bf16 bytes per token, over all decoder layers, of a cache that keeps a full key
// (qk_head_dim, or head_dim) and value (v_head_dim, or head_dim) for every attention head: the
// reference against which MLA's compressed cache and grouped-query attention save memory.
int64_t per_head_kv_cache_bytes_per_token(const ModelConfig& config);

// {"params_total", "params_active", "params_mtp", "attention_params_per_layer",
//  "flops_per_token", "mtp_flops_per_token", "kv_cache_bytes_per_token", "seq_len"}.
nlohmann::json model_stats_to_json(const ModelStats& stats);

}  // namespace latte
