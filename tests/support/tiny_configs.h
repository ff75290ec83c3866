// Small model configs that unit tests start from and change for what they test.
#pragma once

#include <cstdint>

#include "models/config.h"

namespace latte::test {

// A small MLA model with a query LoRA, 3 dense layers, vocab 32, hidden 16.
inline ModelConfig tiny_mla() {
  ModelConfig c;
  c.vocab_size = 32;
  c.hidden_size = 16;
  c.num_hidden_layers = 3;
  c.intermediate_size = 24;
  c.max_position_embeddings = 64;
  c.attention.type = AttentionType::kMla;
  c.attention.num_attention_heads = 2;
  c.attention.q_lora_rank = 8;
  c.attention.kv_lora_rank = 6;
  c.attention.qk_nope_head_dim = 4;
  c.attention.qk_rope_head_dim = 4;
  c.attention.v_head_dim = 6;
  return c;
}

// 4 routed experts of width 8, top-2.
inline MoeConfig tiny_moe(int64_t n_shared, int64_t first_k_dense, int64_t layer_freq) {
  MoeConfig m;
  m.n_routed_experts = 4;
  m.num_experts_per_tok = 2;
  m.n_shared_experts = n_shared;
  m.moe_intermediate_size = 8;
  m.first_k_dense_replace = first_k_dense;
  m.moe_layer_freq = layer_freq;
  return m;
}

}  // namespace latte::test
