// load_model_config: SPEC §7 defaults, every key read, every constraint an error naming
// file:line and the dotted key, attention-type key checks, ignored rope/MoE keys, --set
// overrides, and the JSON/TOML round trips of ModelConfig.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/config/toml_document.h"
#include "models/config_loader.h"
#include "support/error_text.h"
#include "support/temp_dir.h"

namespace {

using latte::ConfigDocument;
using latte::load_model_config;
using latte::ModelConfig;
using latte::test::error_of;
using latte::test::TempDir;

ModelConfig load_text(const std::string& text) {
  return load_model_config(ConfigDocument::parse(text, "model.toml"));
}

// DeepSeek-V3's shape (SPEC §5) scaled down, with every key away from its default.
constexpr const char* kDeepSeekLike = R"([model]
vocab_size = 129280
hidden_size = 7168
num_hidden_layers = 61
intermediate_size = 18432
max_position_embeddings = 163840
rms_norm_eps = 1e-5
initializer_range = 0.006
tie_word_embeddings = true

[model.attention]
type = "mla"
num_attention_heads = 128
q_lora_rank = 1536
kv_lora_rank = 512
qk_nope_head_dim = 128
qk_rope_head_dim = 64
v_head_dim = 128
attention_bias = true
impl = "naive"
rope_interleave = false

[model.rope]
theta = 50000.0
type = "yarn"
factor = 40.0
original_max_position_embeddings = 4096
beta_fast = 16.0
beta_slow = 2.0
mscale = 0.5
mscale_all_dim = 1.0
low_freq_factor = 2.0
high_freq_factor = 8.0

[model.moe]
n_routed_experts = 256
num_experts_per_tok = 8
n_shared_experts = 2
moe_intermediate_size = 2048
scoring_func = "softmax"
topk_method = "group_limited_greedy"
n_group = 8
topk_group = 4
norm_topk_prob = false
routed_scaling_factor = 2.5
first_k_dense_replace = 3
moe_layer_freq = 2
bias_update_speed = 0.01
seq_aux_loss_alpha = 0.0001
aux_loss_alpha = 0.01
router_noise_std = 0.1
capacity_factor = 1.25

[model.mtp]
num_layers = 1
loss_weight = 0.1
)";

}  // namespace

TEST_CASE("an empty model table gives the SPEC §7 defaults and an all-dense model") {
  const ModelConfig c = load_text("[model]\n");
  CHECK(c.vocab_size == 256);
  CHECK(c.hidden_size == 512);
  CHECK(c.num_hidden_layers == 6);
  CHECK(c.intermediate_size == 2048);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.rms_norm_eps == 1e-6);
  CHECK(c.initializer_range == 0.02);
  CHECK(c.tie_word_embeddings == false);
  CHECK(c.attention.type == latte::AttentionType::kMla);
  CHECK(c.attention.num_attention_heads == 8);
  CHECK(c.attention.num_key_value_heads == 8);
  CHECK(c.attention.head_dim == 64);
  CHECK(c.attention.q_lora_rank == 64);
  CHECK(c.attention.kv_lora_rank == 32);
  CHECK(c.attention.qk_nope_head_dim == 32);
  CHECK(c.attention.qk_rope_head_dim == 32);
  CHECK(c.attention.v_head_dim == 64);
  CHECK(c.attention.attention_bias == false);
  CHECK(c.attention.impl == latte::AttentionImpl::kFlash);
  CHECK(c.attention.rope_interleave == true);
  CHECK(c.rope.theta == 10000.0);
  CHECK(c.rope.type == latte::RopeType::kDefault);
  CHECK(c.rope.factor == 1.0);
  CHECK(c.rope.original_max_position_embeddings == 2048);
  CHECK(c.rope.beta_fast == 32.0);
  CHECK(c.rope.beta_slow == 1.0);
  CHECK(c.rope.mscale == 1.0);
  CHECK(c.rope.mscale_all_dim == 0.0);
  CHECK(c.rope.low_freq_factor == 1.0);
  CHECK(c.rope.high_freq_factor == 4.0);
  CHECK_FALSE(c.moe.has_value());
  CHECK(c.mtp.num_layers == 0);
  CHECK(c.mtp.loss_weight == 0.3);
  CHECK_FALSE(c.is_moe_layer(0));
}

TEST_CASE("an empty model.moe table turns on MoE with the SPEC §7 router defaults") {
  const ModelConfig c = load_text("[model]\n[model.moe]\n");
  REQUIRE(c.moe.has_value());
  const latte::MoeConfig& m = *c.moe;
  CHECK(m.n_routed_experts == 8);
  CHECK(m.num_experts_per_tok == 2);
  CHECK(m.n_shared_experts == 1);
  CHECK(m.moe_intermediate_size == 512);
  CHECK(m.scoring_func == latte::ScoringFunc::kSigmoid);
  CHECK(m.topk_method == latte::TopkMethod::kNoauxTc);
  CHECK(m.n_group == 1);
  CHECK(m.topk_group == 1);
  CHECK(m.norm_topk_prob == true);
  CHECK(m.routed_scaling_factor == 1.0);
  CHECK(m.first_k_dense_replace == 0);
  CHECK(m.moe_layer_freq == 1);
  CHECK(m.bias_update_speed == 0.001);
  CHECK(m.seq_aux_loss_alpha == 0.0);
  CHECK(m.aux_loss_alpha == 0.0);
  CHECK(m.router_noise_std == 0.0);
  CHECK(m.capacity_factor == 0.0);
  CHECK(c.is_moe_layer(0));
}

TEST_CASE("every model key is read") {
  const ModelConfig c = load_text(kDeepSeekLike);
  CHECK(c.vocab_size == 129280);
  CHECK(c.hidden_size == 7168);
  CHECK(c.num_hidden_layers == 61);
  CHECK(c.intermediate_size == 18432);
  CHECK(c.max_position_embeddings == 163840);
  CHECK(c.rms_norm_eps == 1e-5);
  CHECK(c.initializer_range == 0.006);
  CHECK(c.tie_word_embeddings == true);
  CHECK(c.attention.type == latte::AttentionType::kMla);
  CHECK(c.attention.num_attention_heads == 128);
  CHECK(c.attention.q_lora_rank == 1536);
  CHECK(c.attention.kv_lora_rank == 512);
  CHECK(c.attention.qk_nope_head_dim == 128);
  CHECK(c.attention.qk_rope_head_dim == 64);
  CHECK(c.attention.v_head_dim == 128);
  CHECK(c.attention.attention_bias == true);
  CHECK(c.attention.impl == latte::AttentionImpl::kNaive);
  CHECK(c.attention.rope_interleave == false);
  CHECK(c.rope.theta == 50000.0);
  CHECK(c.rope.type == latte::RopeType::kYarn);
  CHECK(c.rope.factor == 40.0);
  CHECK(c.rope.original_max_position_embeddings == 4096);
  CHECK(c.rope.beta_fast == 16.0);
  CHECK(c.rope.beta_slow == 2.0);
  CHECK(c.rope.mscale == 0.5);
  CHECK(c.rope.mscale_all_dim == 1.0);
  CHECK(c.rope.low_freq_factor == 2.0);
  CHECK(c.rope.high_freq_factor == 8.0);
  REQUIRE(c.moe.has_value());
  CHECK(c.moe->n_routed_experts == 256);
  CHECK(c.moe->num_experts_per_tok == 8);
  CHECK(c.moe->n_shared_experts == 2);
  CHECK(c.moe->moe_intermediate_size == 2048);
  CHECK(c.moe->scoring_func == latte::ScoringFunc::kSoftmax);
  CHECK(c.moe->topk_method == latte::TopkMethod::kGroupLimitedGreedy);
  CHECK(c.moe->n_group == 8);
  CHECK(c.moe->topk_group == 4);
  CHECK(c.moe->norm_topk_prob == false);
  CHECK(c.moe->routed_scaling_factor == 2.5);
  CHECK(c.moe->first_k_dense_replace == 3);
  CHECK(c.moe->moe_layer_freq == 2);
  CHECK(c.moe->bias_update_speed == 0.01);
  CHECK(c.moe->seq_aux_loss_alpha == 0.0001);
  CHECK(c.moe->aux_loss_alpha == 0.01);
  CHECK(c.moe->router_noise_std == 0.1);
  CHECK(c.moe->capacity_factor == 1.25);
  CHECK(c.mtp.num_layers == 1);
  CHECK(c.mtp.loss_weight == 0.1);
  // SPEC §3 layer rule with first_k_dense_replace 3 and moe_layer_freq 2.
  CHECK_FALSE(c.is_moe_layer(2));
  CHECK_FALSE(c.is_moe_layer(3));
  CHECK(c.is_moe_layer(4));

  const ModelConfig mha = load_text(R"([model]
[model.attention]
type = "mha"
num_attention_heads = 12
num_key_value_heads = 4
head_dim = 32
)");
  CHECK(mha.attention.type == latte::AttentionType::kMha);
  CHECK(mha.attention.num_attention_heads == 12);
  CHECK(mha.attention.num_key_value_heads == 4);
  CHECK(mha.attention.head_dim == 32);
}

TEST_CASE("bad model configs fail with file:line, the dotted key and what was expected") {
  struct Case {
    std::string toml;
    int line;
    std::string key;
    std::string expected;
  };
  const std::vector<Case> cases = {
      // [model]
      {"[model]\nvocab_size = 0\n", 2, "model.vocab_size", "expected an integer >= 1, got 0"},
      {"[model]\nvocab_size = 1.5\n", 2, "model.vocab_size",
       "expected an integer >= 1, got float 1.5"},
      {"[model]\nhidden_size = -1\n", 2, "model.hidden_size", "expected an integer >= 1, got -1"},
      {"[model]\nnum_hidden_layers = 0\n", 2, "model.num_hidden_layers", ">= 1, got 0"},
      {"[model]\nintermediate_size = 0\n", 2, "model.intermediate_size", ">= 1, got 0"},
      {"[model]\nmax_position_embeddings = 0\n", 2, "model.max_position_embeddings", ">= 1"},
      {"[model]\nrms_norm_eps = 0.0\n", 2, "model.rms_norm_eps",
       "expected a finite number > 0, got 0.0"},
      {"[model]\ninitializer_range = -0.02\n", 2, "model.initializer_range", "> 0, got -0.02"},
      {"[model]\ntie_word_embeddings = \"yes\"\n", 2, "model.tie_word_embeddings",
       "expected a boolean (true or false), got string \"yes\""},
      {"[model]\nvocab = 3\n", 2, "model", "unknown key 'vocab' (did you mean 'vocab_size'?)"},
      {"[model]\n[model.foo]\nx = 1\n", 2, "model", "unknown key 'foo'"},
      {"[model]\nattention = 3\n", 2, "model.attention", "expected a table, got integer 3"},
      // [model.attention]
      {"[model]\n[model.attention]\ntype = \"gqa\"\n", 3, "model.attention.type",
       "expected one of \"mla\", \"mha\", got \"gqa\""},
      {"[model]\n[model.attention]\nnum_attention_heads = 0\n", 3,
       "model.attention.num_attention_heads", "expected an integer >= 1, got 0"},
      {"[model]\n[model.attention]\nq_lora_rank = -3\n", 3, "model.attention.q_lora_rank",
       "expected an integer >= 0, got -3"},
      {"[model]\n[model.attention]\nkv_lora_rank = 0\n", 3, "model.attention.kv_lora_rank",
       "expected an integer > 0, got 0"},
      {"[model]\n[model.attention]\nqk_nope_head_dim = -1\n", 3, "model.attention.qk_nope_head_dim",
       "expected an integer >= 0, got -1"},
      {"[model]\n[model.attention]\nqk_rope_head_dim = 0\n", 3, "model.attention.qk_rope_head_dim",
       "expected an integer > 0, got 0"},
      {"[model]\n[model.attention]\nqk_rope_head_dim = 33\n", 3, "model.attention.qk_rope_head_dim",
       "expected an even integer > 0"},
      {"[model]\n[model.attention]\nv_head_dim = 0\n", 3, "model.attention.v_head_dim",
       "expected an integer > 0, got 0"},
      {"[model]\n[model.attention]\nimpl = \"fast\"\n", 3, "model.attention.impl",
       "expected one of \"flash\", \"naive\", got \"fast\""},
      {"[model]\n[model.attention]\nattention_bias = 1\n", 3, "model.attention.attention_bias",
       "expected a boolean"},
      {"[model]\n[model.attention]\nrope_interleave = \"no\"\n", 3,
       "model.attention.rope_interleave", "expected a boolean"},
      {"[model]\n[model.attention]\nq_lora_rnk = 3\n", 3, "model.attention",
       "unknown key 'q_lora_rnk' (did you mean 'q_lora_rank'?)"},
      {"[model]\n[model.attention]\ntype = \"mha\"\nnum_key_value_heads = 0\n", 4,
       "model.attention.num_key_value_heads", "expected an integer >= 1, got 0"},
      {"[model]\n[model.attention]\ntype = \"mha\"\nnum_key_value_heads = 3\n", 4,
       "model.attention.num_key_value_heads",
       "expected a divisor of num_attention_heads = 8, got 3"},
      {"[model]\n[model.attention]\ntype = \"mha\"\nnum_attention_heads = 12\n", 2,
       "model.attention.num_key_value_heads",
       "expected a divisor of num_attention_heads = 12, got 8 (the default)"},
      {"[model]\n[model.attention]\ntype = \"mha\"\nhead_dim = 63\n", 4, "model.attention.head_dim",
       "expected an even integer > 0"},
      {"[model]\n[model.attention]\ntype = \"mha\"\n\nkv_lora_rank = 16\n", 5,
       "model.attention.kv_lora_rank",
       "belongs to type = \"mla\", but this table has type = \"mha\""},
      {"[model]\n[model.attention]\nhead_dim = 64\n", 3, "model.attention.head_dim",
       "belongs to type = \"mha\", but this table has type = \"mla\""},
      // [model.rope]
      {"[model]\n[model.rope]\ntheta = 0.0\n", 3, "model.rope.theta",
       "expected a finite number > 0, got 0.0"},
      {"[model]\n[model.rope]\ntype = \"ntk\"\n", 3, "model.rope.type",
       "expected one of \"default\", \"linear\", \"dynamic\", \"yarn\", \"llama3\", got \"ntk\""},
      {"[model]\n[model.rope]\ntype = \"yarn\"\nfactor = 0.0\n", 4, "model.rope.factor",
       "yarn factor must be > 0, got 0"},
      {"[model]\n[model.rope]\ntype = \"linear\"\nfactor = -2.0\n", 4, "model.rope.factor",
       "linear factor must be > 0, got -2"},
      {"[model]\n[model.rope]\ntype = \"dynamic\"\nfactor = 0\n", 4, "model.rope.factor",
       "dynamic factor must be > 0, got 0"},
      {"[model]\n[model.rope]\ntype = \"llama3\"\nfactor = -1\n", 4, "model.rope.factor",
       "llama3 factor must be > 0, got -1"},
      {"[model]\n[model.rope]\ntype = \"yarn\"\noriginal_max_position_embeddings = 0\n", 4,
       "model.rope.original_max_position_embeddings",
       "yarn needs original_max_position_embeddings > 0, got 0"},
      {"[model]\n[model.rope]\ntype = \"llama3\"\noriginal_max_position_embeddings = -1\n", 4,
       "model.rope.original_max_position_embeddings",
       "llama3 needs original_max_position_embeddings > 0, got -1"},
      {"[model]\n[model.rope]\ntype = \"yarn\"\nbeta_fast = 1.0\nbeta_slow = 1.0\n", 4,
       "model.rope.beta_fast", "yarn needs beta_fast > beta_slow = 1, got 1"},
      {"[model]\n[model.rope]\ntype = \"yarn\"\nbeta_slow = 0.0\n", 4, "model.rope.beta_slow",
       "yarn needs beta_slow > 0, got 0"},
      {"[model]\n[model.rope]\ntype = \"yarn\"\nmscale = -1.0\n", 4, "model.rope.mscale",
       "yarn needs mscale >= 0, got -1"},
      {"[model]\n[model.rope]\ntype = \"yarn\"\nmscale_all_dim = -1.0\n", 4,
       "model.rope.mscale_all_dim", "yarn needs mscale_all_dim >= 0, got -1"},
      {"[model]\n[model.rope]\ntype = \"llama3\"\nlow_freq_factor = 0.0\n", 4,
       "model.rope.low_freq_factor", "llama3 needs low_freq_factor > 0, got 0"},
      {"[model]\n[model.rope]\ntype = \"llama3\"\nlow_freq_factor = 4.0\n", 2,
       "model.rope.high_freq_factor",
       "llama3 needs high_freq_factor > low_freq_factor = 4, got 4 (the default)"},
      {"[model]\n[model.attention]\nqk_rope_head_dim = 2\n[model.rope]\ntype = \"dynamic\"\n", 5,
       "model.rope.type", "needs a rotary dimension > 2, got model.attention.qk_rope_head_dim = 2"},
      {"[model]\n[model.rope]\nfactor = \"2\"\n", 3, "model.rope.factor",
       "expected a number, got string \"2\""},
      {"[model]\n[model.rope]\nscale = 2.0\n", 3, "model.rope", "unknown key 'scale'"},
      // [model.moe]
      {"[model]\n[model.moe]\nn_routed_experts = 0\n", 3, "model.moe.n_routed_experts",
       "expected an integer >= 1, got 0"},
      {"[model]\n[model.moe]\nnum_experts_per_tok = 9\n", 3, "model.moe.num_experts_per_tok",
       "expected an integer in [1, n_routed_experts = 8], got 9"},
      {"[model]\n[model.moe]\nnum_experts_per_tok = 0\n", 3, "model.moe.num_experts_per_tok",
       "expected an integer >= 1, got 0"},
      {"[model]\n[model.moe]\nn_routed_experts = 1\n", 2, "model.moe.num_experts_per_tok",
       "expected an integer in [1, n_routed_experts = 1], got 2 (the default)"},
      {"[model]\n[model.moe]\nn_group = 3\n", 3, "model.moe.n_group",
       "expected a divisor of n_routed_experts = 8, got 3"},
      {"[model]\n[model.moe]\nn_group = 0\n", 3, "model.moe.n_group",
       "expected an integer >= 1, got 0"},
      {"[model]\n[model.moe]\nn_group = 2\ntopk_group = 3\n", 4, "model.moe.topk_group",
       "expected an integer in [1, n_group = 2], got 3"},
      {"[model]\n[model.moe]\ntopk_group = 0\n", 3, "model.moe.topk_group",
       "expected an integer >= 1, got 0"},
      {"[model]\n[model.moe]\ntopk_method = \"group_limited_greedy\"\nn_group = 4\n"
       "num_experts_per_tok = 3\n",
       5, "model.moe.num_experts_per_tok",
       "expected at most (n_routed_experts / n_group) * topk_group = (8 / 4) * 1 = 2"},
      {"[model]\n[model.moe]\nn_group = 8\ntopk_group = 2\n", 3, "model.moe.n_group",
       "noaux_tc scores each group by its top-2 experts, so each group needs >= 2 experts, got "
       "n_routed_experts / n_group = 8 / 8 = 1"},
      {"[model]\n[model.moe]\nn_shared_experts = -1\n", 3, "model.moe.n_shared_experts",
       "expected an integer >= 0, got -1"},
      {"[model]\n[model.moe]\nmoe_intermediate_size = 0\n", 3, "model.moe.moe_intermediate_size",
       "expected an integer >= 1, got 0"},
      {"[model]\n[model.moe]\nscoring_func = \"relu\"\n", 3, "model.moe.scoring_func",
       "expected one of \"sigmoid\", \"softmax\", got \"relu\""},
      {"[model]\n[model.moe]\ntopk_method = \"topk\"\n", 3, "model.moe.topk_method",
       "expected one of \"greedy\", \"group_limited_greedy\", \"noaux_tc\", got \"topk\""},
      {"[model]\n[model.moe]\nrouted_scaling_factor = 0.0\n", 3, "model.moe.routed_scaling_factor",
       "expected a finite number > 0, got 0.0"},
      {"[model]\n[model.moe]\nfirst_k_dense_replace = -1\n", 3, "model.moe.first_k_dense_replace",
       "expected an integer >= 0, got -1"},
      {"[model]\n[model.moe]\nfirst_k_dense_replace = 6\n", 3, "model.moe.first_k_dense_replace",
       "leaves no MoE layer among the 6 layers"},
      {"[model]\nnum_hidden_layers = 2\n[model.moe]\nfirst_k_dense_replace = 1\nmoe_layer_freq = "
       "2\n",
       5, "model.moe.moe_layer_freq", "leaves no MoE layer among the 2 layers"},
      {"[model]\n[model.moe]\nmoe_layer_freq = 0\n", 3, "model.moe.moe_layer_freq",
       "expected an integer >= 1, got 0"},
      {"[model]\n[model.moe]\nbias_update_speed = -0.1\n", 3, "model.moe.bias_update_speed",
       "expected a finite number >= 0, got -0.1"},
      {"[model]\n[model.moe]\nseq_aux_loss_alpha = -1.0\n", 3, "model.moe.seq_aux_loss_alpha",
       ">= 0, got -1.0"},
      {"[model]\n[model.moe]\naux_loss_alpha = -1.0\n", 3, "model.moe.aux_loss_alpha",
       ">= 0, got -1.0"},
      {"[model]\n[model.moe]\nrouter_noise_std = -0.1\n", 3, "model.moe.router_noise_std",
       ">= 0, got -0.1"},
      {"[model]\n[model.moe]\ncapacity_factor = -1.0\n", 3, "model.moe.capacity_factor",
       ">= 0, got -1.0"},
      {"[model]\n[model.moe]\nnorm_topk_prob = \"true\"\n", 3, "model.moe.norm_topk_prob",
       "expected a boolean"},
      {"[model]\n[model.moe]\nn_experts = 8\n", 3, "model.moe", "unknown key 'n_experts'"},
      {"[model]\nmoe = true\n", 2, "model.moe", "expected a table, got boolean true"},
      // [model.mtp]
      {"[model]\n[model.mtp]\nnum_layers = -1\n", 3, "model.mtp.num_layers",
       "expected an integer >= 0, got -1"},
      {"[model]\n[model.mtp]\nloss_weight = -0.3\n", 3, "model.mtp.loss_weight",
       "expected a finite number >= 0, got -0.3"},
      {"[model]\n[model.mtp]\ndepth = 1\n", 3, "model.mtp", "unknown key 'depth'"},
  };
  TempDir dir;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::string file = dir.write("bad_" + std::to_string(i) + ".toml", c.toml);
    const std::string message = error_of([&] { load_model_config(ConfigDocument::load(file)); });
    CHECK_CONTAINS(message, file + ":" + std::to_string(c.line) + ": " + c.key + ": ");
    CHECK_CONTAINS(message, c.expected);
  }

  const std::string no_model = dir.write("no_model.toml", "[train]\nlr = 1e-3\n");
  CHECK(error_of([&] { load_model_config(ConfigDocument::load(no_model)); }) ==
        no_model + ": model: the [model] table is missing (it may be empty)");
}

TEST_CASE("rope and MoE keys the chosen type or router does not use are accepted and ignored") {
  // Values that would be errors for yarn / llama3 / the group routers.
  const ModelConfig c = load_text(R"([model]
[model.rope]
type = "default"
factor = 0.0
original_max_position_embeddings = 0
beta_fast = 0.5
beta_slow = 1.0
mscale = -1.0
low_freq_factor = 5.0
high_freq_factor = 1.0

[model.moe]
topk_method = "greedy"
n_group = 3
topk_group = 5
num_experts_per_tok = 4
)");
  CHECK(c.rope.type == latte::RopeType::kDefault);
  CHECK(c.rope.factor == 0.0);
  CHECK(c.rope.beta_fast == 0.5);
  REQUIRE(c.moe.has_value());
  CHECK(c.moe->topk_method == latte::TopkMethod::kGreedy);
  CHECK(c.moe->n_group == 3);
  CHECK(c.moe->topk_group == 5);

  // linear ignores the yarn and llama3 keys; yarn ignores the llama3 keys.
  CHECK_NOTHROW(
      load_text("[model]\n[model.rope]\ntype = \"linear\"\nfactor = 2.0\nbeta_fast = "
                "0.0\nbeta_slow = 0.0\n"));
  CHECK_NOTHROW(
      load_text("[model]\n[model.rope]\ntype = \"yarn\"\nfactor = 4.0\nlow_freq_factor = 9.0\n"));
  // noaux_tc with a single group needs no per-group top-2.
  CHECK_NOTHROW(load_text("[model]\n[model.moe]\nn_routed_experts = 1\nnum_experts_per_tok = 1\n"));
}

TEST_CASE("--set overrides reach the model config and name the command line in errors") {
  TempDir dir;
  const std::string file = dir.write("base.toml", R"([model]
hidden_size = 256
[model.attention]
type = "mha"
[model.moe]
)");
  ConfigDocument doc = ConfigDocument::load(file);
  doc.apply_overrides({"model.hidden_size=128", "model.attention.impl=naive", "model.moe.n_group=2",
                       "model.rope.type=\"yarn\"", "model.rope.factor=40",
                       "model.mtp.num_layers=2"});
  const ModelConfig c = load_model_config(doc);
  CHECK(c.hidden_size == 128);
  CHECK(c.attention.type == latte::AttentionType::kMha);
  CHECK(c.attention.impl == latte::AttentionImpl::kNaive);
  REQUIRE(c.moe.has_value());
  CHECK(c.moe->n_group == 2);
  CHECK(c.rope.type == latte::RopeType::kYarn);
  CHECK(c.rope.factor == 40.0);
  CHECK(c.mtp.num_layers == 2);

  ConfigDocument bad = ConfigDocument::load(file);
  bad.apply_override("model.moe.n_group=3");
  CHECK(error_of([&] { load_model_config(bad); }) ==
        "command line (--set model.moe.n_group=3): model.moe.n_group: expected a divisor of "
        "n_routed_experts = 8, got 3");
  ConfigDocument wrong_type = ConfigDocument::load(file);
  wrong_type.apply_override("model.attention.q_lora_rank=0");
  CHECK_CONTAINS(error_of([&] { load_model_config(wrong_type); }),
                 "command line (--set model.attention.q_lora_rank=0): "
                 "model.attention.q_lora_rank: belongs to type = \"mla\"");
}

TEST_CASE("ModelConfig round-trips through TOML and JSON") {
  const std::vector<std::string> sources = {"[model]\n", kDeepSeekLike,
                                            R"([model]
vocab_size = 1000
[model.attention]
type = "mha"
num_attention_heads = 6
num_key_value_heads = 2
head_dim = 48
attention_bias = true
[model.rope]
type = "llama3"
factor = 8.0
original_max_position_embeddings = 8192
low_freq_factor = 1.5
high_freq_factor = 3.5
[model.moe]
topk_method = "noaux_tc"
n_routed_experts = 16
n_group = 4
topk_group = 2
num_experts_per_tok = 4
[model.mtp]
num_layers = 2
loss_weight = 0.25
)"};
  for (const auto& source : sources) {
    const ModelConfig config = load_text(source);
    const nlohmann::json json = latte::model_config_to_json(config);
    const std::string toml = latte::model_config_to_toml(config);
    const ModelConfig from_toml = load_model_config(ConfigDocument::parse(toml, "printed.toml"));
    CHECK(latte::model_config_to_json(from_toml) == json);
    const ModelConfig from_json = load_model_config(ConfigDocument::from_json(json, "checkpoint"));
    CHECK(latte::model_config_to_json(from_json) == json);
  }

  // The JSON holds the keys of the configured attention type only, with SPEC names.
  const nlohmann::json mla = latte::model_config_to_json(load_text(kDeepSeekLike));
  CHECK(mla["model"]["attention"]["q_lora_rank"] == 1536);
  CHECK_FALSE(mla["model"]["attention"].contains("head_dim"));
  CHECK(mla["model"]["rope"]["type"] == "yarn");
  CHECK(mla["model"]["moe"]["topk_method"] == "group_limited_greedy");
  CHECK(mla["model"]["rms_norm_eps"].is_number_float());
  const nlohmann::json dense = latte::model_config_to_json(load_text("[model]\n"));
  CHECK_FALSE(dense["model"].contains("moe"));

  // The TOML text keeps SPEC §7 key order and float spelling.
  const std::string toml = latte::model_config_to_toml(load_text("[model]\n"));
  CHECK(toml.rfind("[model]\nvocab_size = 256\nhidden_size = 512\n", 0) == 0);
  CHECK_CONTAINS(toml, "rms_norm_eps = 1e-06\n");
  CHECK_CONTAINS(toml, "[model.attention]\ntype = \"mla\"\nnum_attention_heads = 8\nq_lora_rank");
  CHECK_CONTAINS(toml, "[model.rope]\ntheta = 10000.0\n");
}
