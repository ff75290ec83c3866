// Typed model configuration: the [model], [model.attention], [model.rope], [model.moe] and
// [model.mtp] tables of SPEC §7. Defaults are the SPEC's. Loading and validation live in
// models/config_loader.h; everything downstream reads these structs, never TOML.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace latte {

enum class AttentionType { kMla, kMha };
enum class AttentionImpl { kFlash, kNaive };
enum class RopeType { kDefault, kLinear, kDynamic, kYarn, kLlama3 };
enum class ScoringFunc { kSigmoid, kSoftmax };
enum class TopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

struct RopeConfig {
  double theta = 10000.0;
  RopeType type = RopeType::kDefault;
  double factor = 1.0;
  int64_t original_max_position_embeddings = 2048;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
};

struct AttentionConfig {
  AttentionType type = AttentionType::kMla;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 8;  // mha only
  int64_t head_dim = 64;            // mha only
  int64_t q_lora_rank = 64;         // mla; 0 = q_proj
  int64_t kv_lora_rank = 32;        // mla
  int64_t qk_nope_head_dim = 32;    // mla
  int64_t qk_rope_head_dim = 32;    // mla
  int64_t v_head_dim = 64;          // mla
  bool attention_bias = false;
  AttentionImpl impl = AttentionImpl::kFlash;
  bool rope_interleave = true;

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
};

struct MoeConfig {
  int64_t n_routed_experts = 8;
  int64_t num_experts_per_tok = 2;
  int64_t n_shared_experts = 1;
  int64_t moe_intermediate_size = 512;
  ScoringFunc scoring_func = ScoringFunc::kSigmoid;
  TopkMethod topk_method = TopkMethod::kNoauxTc;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;
  int64_t first_k_dense_replace = 0;
  int64_t moe_layer_freq = 1;
  double bias_update_speed = 0.001;
  double seq_aux_loss_alpha = 0.0;
  double aux_loss_alpha = 0.0;
  double router_noise_std = 0.0;
  double capacity_factor = 0.0;  // latte extension: 0 = dropless
};

struct MtpConfig {
  int64_t num_layers = 0;
  double loss_weight = 0.3;
};

struct ModelConfig {
  int64_t vocab_size = 256;
  int64_t hidden_size = 512;
  int64_t num_hidden_layers = 6;
  int64_t intermediate_size = 2048;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  bool tie_word_embeddings = false;

  AttentionConfig attention;
  RopeConfig rope;
  std::optional<MoeConfig> moe;  // absent = all-dense model
  MtpConfig mtp;

  // SPEC §3: layer l is MoE when l >= first_k_dense_replace and l % moe_layer_freq == 0.
  bool is_moe_layer(int64_t layer) const {
    return moe && layer >= moe->first_k_dense_replace && layer % moe->moe_layer_freq == 0;
  }
};

}  // namespace latte
