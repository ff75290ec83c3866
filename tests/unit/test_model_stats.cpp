// compute_model_stats: parameter counts checked against the real DeepSeekModel's parameter tree
// for every attention / MoE / embedding / MTP shape; KV-cache bytes and FLOPs checked against
// hand-computed tiny configs; DeepSeek-V3's published size from configs/deepseek_v3_671b.toml.
#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/config/toml_document.h"
#include "engine/error.h"
#include "models/config_loader.h"
#include "models/model.h"
#include "models/model_stats.h"
#include "support/tiny_configs.h"

namespace {

using latte::AttentionType;
using latte::ModelConfig;
using latte::MoeConfig;
using latte::test::tiny_mla;
using latte::test::tiny_moe;

ModelConfig tiny_mha(int64_t kv_heads, bool bias) {
  ModelConfig c = tiny_mla();
  c.attention.type = AttentionType::kMha;
  c.attention.num_attention_heads = 4;
  c.attention.num_key_value_heads = kv_heads;
  c.attention.head_dim = 4;
  c.attention.attention_bias = bias;
  return c;
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Builds the real model and checks every count compute_model_stats derives from the config.
void check_against_model(const ModelConfig& config) {
  const latte::ModelStats stats = latte::compute_model_stats(config, 16);
  latte::DeepSeekModel model(config, 7, latte::DType::F32);

  // Split the real parameters into the main model and the MTP modules (model.layers.{L+m}.*),
  // and collect what the per-token accounting needs: each layer's self_attn parameters and the
  // routed experts of each MoE layer.
  int64_t main_params = 0, mtp_params = 0;
  std::map<int64_t, int64_t> attention_of_layer, routed_of_layer;
  for (const auto& [name, tensor] : model.named_parameters()) {
    const int64_t n = tensor.numel();
    int64_t layer = -1;
    if (starts_with(name, "model.layers.")) {
      layer = std::stoll(name.substr(std::string("model.layers.").size()));
    }
    const std::string layer_prefix = "model.layers." + std::to_string(layer) + ".";
    if (layer >= config.num_hidden_layers) {
      mtp_params += n;
      continue;
    }
    main_params += n;
    if (layer < 0) continue;
    if (starts_with(name, layer_prefix + "self_attn.")) attention_of_layer[layer] += n;
    if (starts_with(name, layer_prefix + "mlp.experts.")) routed_of_layer[layer] += n;
  }

  CHECK(model.parameter_count() == stats.params_total + stats.params_mtp);
  CHECK(stats.params_total == main_params);
  CHECK(stats.params_mtp == mtp_params);
  REQUIRE(static_cast<int64_t>(attention_of_layer.size()) == config.num_hidden_layers);
  for (const auto& [layer, count] : attention_of_layer) {
    CAPTURE(layer);
    CHECK(stats.attention_params_per_layer == count);
  }

  // Active per token: everything but the routed experts, plus top-k of the E equal experts.
  int64_t active = main_params;
  for (const auto& [layer, routed] : routed_of_layer) {
    const MoeConfig& moe = *config.moe;
    REQUIRE(routed % moe.n_routed_experts == 0);
    active += routed / moe.n_routed_experts * moe.num_experts_per_tok - routed;
  }
  CHECK(stats.params_active == active);
  if (!config.moe) CHECK(stats.params_active == stats.params_total);
}

}  // namespace

TEST_CASE("model stats: parameter counts match the real model for every shape") {
  SUBCASE("MLA with q_lora, no bias") {
    check_against_model(tiny_mla());
  }
  SUBCASE("MLA with q_lora and bias") {
    ModelConfig c = tiny_mla();
    c.attention.attention_bias = true;
    check_against_model(c);
  }
  SUBCASE("MLA without q_lora (q_proj), bias") {
    ModelConfig c = tiny_mla();
    c.attention.q_lora_rank = 0;
    c.attention.attention_bias = true;
    check_against_model(c);
  }
  SUBCASE("MLA without q_lora, no bias, qk_nope 0") {
    ModelConfig c = tiny_mla();
    c.attention.q_lora_rank = 0;
    c.attention.qk_nope_head_dim = 0;
    check_against_model(c);
  }
  SUBCASE("MHA with bias") {
    check_against_model(tiny_mha(4, true));
  }
  SUBCASE("GQA without bias") {
    check_against_model(tiny_mha(2, false));
  }
  SUBCASE("MoE with shared experts after first_k_dense_replace, every other layer") {
    ModelConfig c = tiny_mla();
    c.num_hidden_layers = 5;  // layers 2 and 4 are MoE
    c.moe = tiny_moe(2, 1, 2);
    check_against_model(c);
  }
  SUBCASE("MoE without shared experts, every layer") {
    ModelConfig c = tiny_mha(2, true);
    c.moe = tiny_moe(0, 0, 1);
    check_against_model(c);
  }
  SUBCASE("tied embeddings") {
    ModelConfig c = tiny_mla();
    c.tie_word_embeddings = true;
    check_against_model(c);
  }
  SUBCASE("MTP modules follow the MoE layer rule at index L + m") {
    ModelConfig c = tiny_mla();
    c.moe = tiny_moe(1, 1, 2);  // layers 0, 1, 2: MoE at 2; MTP at 3 (dense) and 4 (MoE)
    c.mtp.num_layers = 2;
    check_against_model(c);
  }
}

TEST_CASE("model stats: KV cache bytes per token by hand") {
  SUBCASE("MLA caches kv_lora_rank + qk_rope_head_dim per layer") {
    ModelConfig c = tiny_mla();  // 3 layers x (6 + 4) values x 2 bytes
    CHECK(latte::compute_model_stats(c, 8).kv_cache_bytes_per_token == 60);
    // Full per-head keys and values: 3 layers x 2 heads x (8 + 6) x 2 bytes.
    CHECK(latte::per_head_kv_cache_bytes_per_token(c) == 168);
  }
  SUBCASE("MHA caches a key and a value per key/value head") {
    // 3 layers x 2 x 2 kv heads x head_dim 4 x 2 bytes; per head: 4 heads instead of 2.
    const ModelConfig gqa = tiny_mha(2, false);
    CHECK(latte::compute_model_stats(gqa, 8).kv_cache_bytes_per_token == 96);
    CHECK(latte::per_head_kv_cache_bytes_per_token(gqa) == 192);
    CHECK(latte::compute_model_stats(tiny_mha(4, false), 8).kv_cache_bytes_per_token == 192);
  }
}

TEST_CASE("model stats: FLOPs per token by hand") {
  // vocab 10, d 4, one layer, dense MLP of width 3.
  ModelConfig c;
  c.vocab_size = 10;
  c.hidden_size = 4;
  c.num_hidden_layers = 1;
  c.intermediate_size = 3;
  const auto use_one_head_mha = [&c] {
    c.attention.type = AttentionType::kMha;
    c.attention.num_attention_heads = 1;
    c.attention.num_key_value_heads = 1;
    c.attention.head_dim = 2;
  };

  SUBCASE("MHA, untied and tied") {
    use_one_head_mha();
    // Matmul weights: q, k, v, o 4 x 2 each = 32; MLP 3 x 4 x 3 = 36; lm_head 10 x 4 = 40.
    // 2 x 108 = 216, plus attention 2 x 1 head x (2 + 2) x (3 + 1) / 2 = 16 at seq_len 3.
    CHECK(latte::compute_model_stats(c, 3).flops_per_token == 232.0);
    // Tied: the lm_head matmul still runs (on the embedding); only the parameter count drops.
    const latte::ModelStats untied = latte::compute_model_stats(c, 3);
    c.tie_word_embeddings = true;
    const latte::ModelStats tied = latte::compute_model_stats(c, 3);
    CHECK(tied.flops_per_token == 232.0);
    CHECK(untied.params_total - tied.params_total == 40);
    CHECK(untied.mtp_flops_per_token == 0.0);
  }
  SUBCASE("MTP modules: their own FLOPs, the main model's unchanged") {
    use_one_head_mha();
    c.mtp.num_layers = 2;
    const latte::ModelStats s = latte::compute_model_stats(c, 3);
    CHECK(s.flops_per_token == 232.0);
    // Per module: its block's attention 32 and MLP 36, eh_proj 8 x 4 = 32, the shared lm_head 40:
    // 2 x 140 = 280, plus its attention 16 at seq_len 3; two modules.
    CHECK(s.mtp_flops_per_token == 2 * 296.0);
  }
  SUBCASE("MLA with bias (biases are not matmul FLOPs)") {
    c.attention.type = AttentionType::kMla;
    c.attention.num_attention_heads = 2;
    c.attention.q_lora_rank = 0;
    c.attention.kv_lora_rank = 2;
    c.attention.qk_nope_head_dim = 2;
    c.attention.qk_rope_head_dim = 2;
    c.attention.v_head_dim = 3;
    c.attention.attention_bias = true;
    const latte::ModelStats s = latte::compute_model_stats(c, 4);
    // q_proj 4 x 8 = 32, kv_a 4 x 4 = 16, kv_b 2 x 10 = 20, o_proj 6 x 4 = 24: 92; MLP 36;
    // lm_head 40: 2 x 168 = 336, plus attention 2 x 2 heads x (4 + 3) x (4 + 1) / 2 = 70.
    CHECK(s.flops_per_token == 406.0);
    // The same block's parameters: 92 weights + biases 8 + 4 + 4 + kv_a_layernorm 2.
    CHECK(s.attention_params_per_layer == 110);
  }
  SUBCASE("MoE runs the router, top-k routed experts and the shared experts") {
    use_one_head_mha();
    c.moe = tiny_moe(1, 0, 1);  // 4 experts of width 8, top-2, 1 shared
    // Attention 32; router 4 x 4 = 16; 2 experts x 3 x 4 x 8 = 192; shared 96; lm_head 40:
    // 2 x 376 = 752, plus attention 16 at seq_len 3.
    CHECK(latte::compute_model_stats(c, 3).flops_per_token == 768.0);
  }
}

TEST_CASE("model stats: DeepSeek-V3 config gives the published size") {
  const ModelConfig config = latte::load_model_config(
      latte::ConfigDocument::load(LATTE_SOURCE_DIR "/configs/deepseek_v3_671b.toml"));
  const latte::ModelStats s = latte::compute_model_stats(config, 4096);
  // Attention: q_a 7168·1536 + 1536 + q_b 1536·128·192 + kv_a 7168·576 + 512 + kv_b 512·128·256
  // + o 16384·7168 = 187,107,328. Dense layer: + 3·7168·18432 + 2·7168 = 583,483,392.
  // MoE layer: + gate 256·7168 + 257 experts of 3·7168·2048 + 2·7168 = 11,507,286,016.
  // 3 dense + 58 MoE + embed and lm_head 2·129280·7168 + norm 7168 = 671,026,404,352.
  CHECK(s.attention_params_per_layer == 187'107'328);
  CHECK(s.params_total == 671'026'404'352);
  // Active: 3 dense layers + 58 x (attention, norms, gate, 8 routed + 1 shared expert)
  // + embed, lm_head, norm = 37,552,282,624.
  CHECK(s.params_active == 37'552'282'624);
  // MTP: one MoE block + enorm, hnorm, shared_head.norm 3·7168 + eh_proj 2·7168·7168.
  CHECK(s.params_mtp == 11'610'067'968);
  CHECK(s.kv_cache_bytes_per_token == 61 * 576 * 2);
  CHECK(latte::per_head_kv_cache_bytes_per_token(config) == 61 * 128 * 320 * 2);
}

TEST_CASE("model stats: JSON keys and bad seq_len") {
  const latte::ModelStats s = latte::compute_model_stats(tiny_mla(), 5);
  const nlohmann::json j = latte::model_stats_to_json(s);
  CHECK(j.size() == 8);
  CHECK(j.at("params_total").get<int64_t>() == s.params_total);
  CHECK(j.at("params_active").get<int64_t>() == s.params_active);
  CHECK(j.at("params_mtp").get<int64_t>() == s.params_mtp);
  CHECK(j.at("attention_params_per_layer").get<int64_t>() == s.attention_params_per_layer);
  CHECK(j.at("flops_per_token").get<double>() == s.flops_per_token);
  CHECK(j.at("mtp_flops_per_token").get<double>() == s.mtp_flops_per_token);
  CHECK(j.at("kv_cache_bytes_per_token").get<int64_t>() == s.kv_cache_bytes_per_token);
  CHECK(j.at("seq_len").get<int64_t>() == 5);
  try {
    latte::compute_model_stats(tiny_mla(), 0);
    FAIL("seq_len 0 was accepted");
  } catch (const latte::Error& e) {
    CHECK(std::string(e.what()).find("seq_len must be >= 1, got 0") != std::string::npos);
  }
}
