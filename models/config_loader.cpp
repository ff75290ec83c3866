#include "models/config_loader.h"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <span>

#include "engine/error.h"

namespace latte {

namespace {

constexpr std::array<std::string_view, 5> kMlaOnlyKeys = {
    "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"};
constexpr std::array<std::string_view, 2> kMhaOnlyKeys = {"num_key_value_heads", "head_dim"};

// Shortest text of a double for messages: "0.5", "1e-06", "2".
std::string number(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// " (the default)" when `key` is absent, so that a message about a value nobody wrote says so.
std::string default_note(const TableReader& table, std::string_view key) {
  return table.has(key) ? "" : " (the default)";
}

// A rotary dimension: RoPE rotates pairs, so it must be even.
int64_t get_rotary_dim(TableReader& table, std::string_view key, int64_t fallback) {
  const int64_t value = table.get_int(key, fallback, Bounds::greater_than(0));
  if (value % 2 != 0) {
    table.fail(key, "expected an even integer > 0 (RoPE rotates pairs of values), got " +
                        std::to_string(value));
  }
  return value;
}

void reject_other_type_keys(const TableReader& table, AttentionType type) {
  const std::span<const std::string_view> foreign =
      type == AttentionType::kMla ? std::span<const std::string_view>(kMhaOnlyKeys)
                                  : std::span<const std::string_view>(kMlaOnlyKeys);
  const std::string own(to_string(type));
  const std::string other(
      to_string(type == AttentionType::kMla ? AttentionType::kMha : AttentionType::kMla));
  for (const std::string_view key : foreign) {
    if (table.has(key)) {
      table.fail(key, "belongs to type = \"" + other + "\", but this table has type = \"" + own +
                          "\" (remove the key or change the type)");
    }
  }
}

AttentionConfig read_attention(TableReader& table) {
  AttentionConfig a;
  a.type = table.get_enum<AttentionType>(
      "type", {{"mla", AttentionType::kMla}, {"mha", AttentionType::kMha}}, a.type);
  reject_other_type_keys(table, a.type);
  a.num_attention_heads =
      table.get_int("num_attention_heads", a.num_attention_heads, Bounds::at_least(1));
  if (a.type == AttentionType::kMla) {
    a.q_lora_rank = table.get_int("q_lora_rank", a.q_lora_rank, Bounds::at_least(0));
    a.kv_lora_rank = table.get_int("kv_lora_rank", a.kv_lora_rank, Bounds::greater_than(0));
    a.qk_nope_head_dim = table.get_int("qk_nope_head_dim", a.qk_nope_head_dim, Bounds::at_least(0));
    a.qk_rope_head_dim = get_rotary_dim(table, "qk_rope_head_dim", a.qk_rope_head_dim);
    a.v_head_dim = table.get_int("v_head_dim", a.v_head_dim, Bounds::greater_than(0));
  } else {
    a.num_key_value_heads =
        table.get_int("num_key_value_heads", a.num_key_value_heads, Bounds::at_least(1));
    if (a.num_attention_heads % a.num_key_value_heads != 0) {
      table.fail("num_key_value_heads", "expected a divisor of num_attention_heads = " +
                                            std::to_string(a.num_attention_heads) + ", got " +
                                            std::to_string(a.num_key_value_heads) +
                                            default_note(table, "num_key_value_heads"));
    }
    a.head_dim = get_rotary_dim(table, "head_dim", a.head_dim);
  }
  a.attention_bias = table.get_bool("attention_bias", a.attention_bias);
  a.impl = table.get_enum<AttentionImpl>(
      "impl", {{"flash", AttentionImpl::kFlash}, {"naive", AttentionImpl::kNaive}}, a.impl);
  a.rope_interleave = table.get_bool("rope_interleave", a.rope_interleave);
  table.reject_unused();
  return a;
}

// Every key is read (and type-checked); only those the chosen type uses are range-checked.
RopeConfig read_rope(TableReader& table, int64_t rotary_dim, const std::string& rotary_dim_key) {
  RopeConfig r;
  r.theta = table.get_double("theta", r.theta, Bounds::greater_than(0));
  r.type = table.get_enum<RopeType>("type",
                                    {{"default", RopeType::kDefault},
                                     {"linear", RopeType::kLinear},
                                     {"dynamic", RopeType::kDynamic},
                                     {"yarn", RopeType::kYarn},
                                     {"llama3", RopeType::kLlama3}},
                                    r.type);
  r.factor = table.get_double("factor", r.factor);
  r.original_max_position_embeddings =
      table.get_int("original_max_position_embeddings", r.original_max_position_embeddings);
  r.beta_fast = table.get_double("beta_fast", r.beta_fast);
  r.beta_slow = table.get_double("beta_slow", r.beta_slow);
  r.mscale = table.get_double("mscale", r.mscale);
  r.mscale_all_dim = table.get_double("mscale_all_dim", r.mscale_all_dim);
  r.low_freq_factor = table.get_double("low_freq_factor", r.low_freq_factor);
  r.high_freq_factor = table.get_double("high_freq_factor", r.high_freq_factor);
  table.reject_unused();

  const std::string type(to_string(r.type));
  if (r.type != RopeType::kDefault && !(r.factor > 0)) {
    table.fail("factor", type + " factor must be > 0, got " + number(r.factor));
  }
  if ((r.type == RopeType::kYarn || r.type == RopeType::kLlama3) &&
      r.original_max_position_embeddings <= 0) {
    table.fail("original_max_position_embeddings",
               type + " needs original_max_position_embeddings > 0, got " +
                   std::to_string(r.original_max_position_embeddings));
  }
  if (r.type == RopeType::kYarn) {
    if (!(r.beta_slow > 0)) {
      table.fail("beta_slow", "yarn needs beta_slow > 0, got " + number(r.beta_slow));
    }
    if (!(r.beta_fast > r.beta_slow)) {
      table.fail("beta_fast", "yarn needs beta_fast > beta_slow = " + number(r.beta_slow) +
                                  ", got " + number(r.beta_fast) +
                                  default_note(table, "beta_fast"));
    }
    if (!(r.mscale >= 0)) table.fail("mscale", "yarn needs mscale >= 0, got " + number(r.mscale));
    if (!(r.mscale_all_dim >= 0)) {
      table.fail("mscale_all_dim",
                 "yarn needs mscale_all_dim >= 0, got " + number(r.mscale_all_dim));
    }
  }
  if (r.type == RopeType::kLlama3) {
    if (!(r.low_freq_factor > 0)) {
      table.fail("low_freq_factor",
                 "llama3 needs low_freq_factor > 0, got " + number(r.low_freq_factor));
    }
    if (!(r.high_freq_factor > r.low_freq_factor)) {
      table.fail("high_freq_factor",
                 "llama3 needs high_freq_factor > low_freq_factor = " + number(r.low_freq_factor) +
                     ", got " + number(r.high_freq_factor) +
                     default_note(table, "high_freq_factor"));
    }
  }
  if (r.type == RopeType::kDynamic && rotary_dim <= 2) {
    table.fail("type",
               "dynamic rope raises theta to the power dim/(dim-2), so it needs a rotary "
               "dimension > 2, got " +
                   rotary_dim_key + " = " + std::to_string(rotary_dim));
  }
  return r;
}

bool is_group_method(TopkMethod method) {
  return method == TopkMethod::kGroupLimitedGreedy || method == TopkMethod::kNoauxTc;
}

// Every key is read with its sign/range check; the group relations only for the group methods.
MoeConfig read_moe(TableReader& table, int64_t num_hidden_layers) {
  MoeConfig m;
  m.n_routed_experts = table.get_int("n_routed_experts", m.n_routed_experts, Bounds::at_least(1));
  m.num_experts_per_tok =
      table.get_int("num_experts_per_tok", m.num_experts_per_tok, Bounds::at_least(1));
  if (m.num_experts_per_tok > m.n_routed_experts) {
    table.fail("num_experts_per_tok", "expected an integer in [1, n_routed_experts = " +
                                          std::to_string(m.n_routed_experts) + "], got " +
                                          std::to_string(m.num_experts_per_tok) +
                                          default_note(table, "num_experts_per_tok"));
  }
  m.n_shared_experts = table.get_int("n_shared_experts", m.n_shared_experts, Bounds::at_least(0));
  m.moe_intermediate_size =
      table.get_int("moe_intermediate_size", m.moe_intermediate_size, Bounds::at_least(1));
  m.scoring_func = table.get_enum<ScoringFunc>(
      "scoring_func", {{"sigmoid", ScoringFunc::kSigmoid}, {"softmax", ScoringFunc::kSoftmax}},
      m.scoring_func);
  m.topk_method =
      table.get_enum<TopkMethod>("topk_method",
                                 {{"greedy", TopkMethod::kGreedy},
                                  {"group_limited_greedy", TopkMethod::kGroupLimitedGreedy},
                                  {"noaux_tc", TopkMethod::kNoauxTc}},
                                 m.topk_method);
  m.n_group = table.get_int("n_group", m.n_group, Bounds::at_least(1));
  m.topk_group = table.get_int("topk_group", m.topk_group, Bounds::at_least(1));
  m.norm_topk_prob = table.get_bool("norm_topk_prob", m.norm_topk_prob);
  m.routed_scaling_factor =
      table.get_double("routed_scaling_factor", m.routed_scaling_factor, Bounds::greater_than(0));
  m.first_k_dense_replace =
      table.get_int("first_k_dense_replace", m.first_k_dense_replace, Bounds::at_least(0));
  m.moe_layer_freq = table.get_int("moe_layer_freq", m.moe_layer_freq, Bounds::at_least(1));
  m.bias_update_speed =
      table.get_double("bias_update_speed", m.bias_update_speed, Bounds::at_least(0));
  m.seq_aux_loss_alpha =
      table.get_double("seq_aux_loss_alpha", m.seq_aux_loss_alpha, Bounds::at_least(0));
  m.aux_loss_alpha = table.get_double("aux_loss_alpha", m.aux_loss_alpha, Bounds::at_least(0));
  m.router_noise_std =
      table.get_double("router_noise_std", m.router_noise_std, Bounds::at_least(0));
  m.capacity_factor = table.get_double("capacity_factor", m.capacity_factor, Bounds::at_least(0));
  table.reject_unused();

  if (is_group_method(m.topk_method)) {
    const std::string method(to_string(m.topk_method));
    if (m.n_routed_experts % m.n_group != 0) {
      table.fail("n_group",
                 "expected a divisor of n_routed_experts = " + std::to_string(m.n_routed_experts) +
                     ", got " + std::to_string(m.n_group) + default_note(table, "n_group"));
    }
    if (m.topk_group > m.n_group) {
      table.fail("topk_group", "expected an integer in [1, n_group = " + std::to_string(m.n_group) +
                                   "], got " + std::to_string(m.topk_group) +
                                   default_note(table, "topk_group"));
    }
    const int64_t per_group = m.n_routed_experts / m.n_group;
    const int64_t reachable = per_group * m.topk_group;
    if (m.num_experts_per_tok > reachable) {
      table.fail("num_experts_per_tok",
                 "expected at most (n_routed_experts / n_group) * topk_group = (" +
                     std::to_string(m.n_routed_experts) + " / " + std::to_string(m.n_group) +
                     ") * " + std::to_string(m.topk_group) + " = " + std::to_string(reachable) +
                     " (the experts in the groups " + method + " keeps), got " +
                     std::to_string(m.num_experts_per_tok) +
                     default_note(table, "num_experts_per_tok"));
    }
    if (m.topk_method == TopkMethod::kNoauxTc && m.n_group > 1 && per_group < 2) {
      table.fail("n_group",
                 "noaux_tc scores each group by its top-2 experts, so each group needs >= 2 "
                 "experts, got n_routed_experts / n_group = " +
                     std::to_string(m.n_routed_experts) + " / " + std::to_string(m.n_group) +
                     " = " + std::to_string(per_group));
    }
  }

  bool any_moe_layer = false;
  for (int64_t layer = m.first_k_dense_replace; layer < num_hidden_layers; ++layer) {
    any_moe_layer = any_moe_layer || layer % m.moe_layer_freq == 0;
  }
  if (!any_moe_layer) {
    const std::string_view key =
        m.first_k_dense_replace >= num_hidden_layers ? "first_k_dense_replace" : "moe_layer_freq";
    table.fail(key,
               "leaves no MoE layer among the " + std::to_string(num_hidden_layers) +
                   " layers (first_k_dense_replace = " + std::to_string(m.first_k_dense_replace) +
                   ", moe_layer_freq = " + std::to_string(m.moe_layer_freq) +
                   "); omit [model.moe] for an all-dense model");
  }
  return m;
}

MtpConfig read_mtp(TableReader& table) {
  MtpConfig mtp;
  mtp.num_layers = table.get_int("num_layers", mtp.num_layers, Bounds::at_least(0));
  mtp.loss_weight = table.get_double("loss_weight", mtp.loss_weight, Bounds::at_least(0));
  table.reject_unused();
  return mtp;
}

template <typename Json>
Json model_json(const ModelConfig& c) {
  Json attention = Json::object();
  const AttentionConfig& a = c.attention;
  attention["type"] = std::string(to_string(a.type));
  attention["num_attention_heads"] = a.num_attention_heads;
  if (a.type == AttentionType::kMha) {
    attention["num_key_value_heads"] = a.num_key_value_heads;
    attention["head_dim"] = a.head_dim;
  } else {
    attention["q_lora_rank"] = a.q_lora_rank;
    attention["kv_lora_rank"] = a.kv_lora_rank;
    attention["qk_nope_head_dim"] = a.qk_nope_head_dim;
    attention["qk_rope_head_dim"] = a.qk_rope_head_dim;
    attention["v_head_dim"] = a.v_head_dim;
  }
  attention["attention_bias"] = a.attention_bias;
  attention["impl"] = std::string(to_string(a.impl));
  attention["rope_interleave"] = a.rope_interleave;

  Json rope = Json::object();
  const RopeConfig& r = c.rope;
  rope["theta"] = r.theta;
  rope["type"] = std::string(to_string(r.type));
  rope["factor"] = r.factor;
  rope["original_max_position_embeddings"] = r.original_max_position_embeddings;
  rope["beta_fast"] = r.beta_fast;
  rope["beta_slow"] = r.beta_slow;
  rope["mscale"] = r.mscale;
  rope["mscale_all_dim"] = r.mscale_all_dim;
  rope["low_freq_factor"] = r.low_freq_factor;
  rope["high_freq_factor"] = r.high_freq_factor;

  Json model = Json::object();
  model["vocab_size"] = c.vocab_size;
  model["hidden_size"] = c.hidden_size;
  model["num_hidden_layers"] = c.num_hidden_layers;
  model["intermediate_size"] = c.intermediate_size;
  model["max_position_embeddings"] = c.max_position_embeddings;
  model["rms_norm_eps"] = c.rms_norm_eps;
  model["initializer_range"] = c.initializer_range;
  model["tie_word_embeddings"] = c.tie_word_embeddings;
  model["attention"] = attention;
  model["rope"] = rope;
  if (c.moe) {
    const MoeConfig& m = *c.moe;
    Json moe = Json::object();
    moe["n_routed_experts"] = m.n_routed_experts;
    moe["num_experts_per_tok"] = m.num_experts_per_tok;
    moe["n_shared_experts"] = m.n_shared_experts;
    moe["moe_intermediate_size"] = m.moe_intermediate_size;
    moe["scoring_func"] = std::string(to_string(m.scoring_func));
    moe["topk_method"] = std::string(to_string(m.topk_method));
    moe["n_group"] = m.n_group;
    moe["topk_group"] = m.topk_group;
    moe["norm_topk_prob"] = m.norm_topk_prob;
    moe["routed_scaling_factor"] = m.routed_scaling_factor;
    moe["first_k_dense_replace"] = m.first_k_dense_replace;
    moe["moe_layer_freq"] = m.moe_layer_freq;
    moe["bias_update_speed"] = m.bias_update_speed;
    moe["seq_aux_loss_alpha"] = m.seq_aux_loss_alpha;
    moe["aux_loss_alpha"] = m.aux_loss_alpha;
    moe["router_noise_std"] = m.router_noise_std;
    moe["capacity_factor"] = m.capacity_factor;
    model["moe"] = moe;
  }
  Json mtp = Json::object();
  mtp["num_layers"] = c.mtp.num_layers;
  mtp["loss_weight"] = c.mtp.loss_weight;
  model["mtp"] = mtp;

  Json root = Json::object();
  root["model"] = model;
  return root;
}

}  // namespace

ModelConfig load_model_config(const ConfigDocument& doc) {
  TableReader model = doc.table("model");
  LATTE_CHECK(model.exists()) << doc.source()
                              << ": model: the [model] table is missing (it may be empty)";
  ModelConfig c;
  c.vocab_size = model.get_int("vocab_size", c.vocab_size, Bounds::at_least(1));
  c.hidden_size = model.get_int("hidden_size", c.hidden_size, Bounds::at_least(1));
  c.num_hidden_layers =
      model.get_int("num_hidden_layers", c.num_hidden_layers, Bounds::at_least(1));
  c.intermediate_size =
      model.get_int("intermediate_size", c.intermediate_size, Bounds::at_least(1));
  c.max_position_embeddings =
      model.get_int("max_position_embeddings", c.max_position_embeddings, Bounds::at_least(1));
  c.rms_norm_eps = model.get_double("rms_norm_eps", c.rms_norm_eps, Bounds::greater_than(0));
  c.initializer_range =
      model.get_double("initializer_range", c.initializer_range, Bounds::greater_than(0));
  c.tie_word_embeddings = model.get_bool("tie_word_embeddings", c.tie_word_embeddings);

  TableReader attention = model.table("attention");
  c.attention = read_attention(attention);
  const bool mla = c.attention.type == AttentionType::kMla;
  TableReader rope = model.table("rope");
  c.rope = read_rope(rope, mla ? c.attention.qk_rope_head_dim : c.attention.head_dim,
                     attention.key_path(mla ? "qk_rope_head_dim" : "head_dim"));
  if (model.has("moe")) {
    TableReader moe = model.table("moe");
    c.moe = read_moe(moe, c.num_hidden_layers);
  }
  TableReader mtp = model.table("mtp");
  c.mtp = read_mtp(mtp);
  model.reject_unused();
  return c;
}

nlohmann::json model_config_to_json(const ModelConfig& config) {
  return model_json<nlohmann::json>(config);
}

std::string model_config_to_toml(const ModelConfig& config) {
  return ConfigDocument::from_json(model_json<nlohmann::ordered_json>(config), "model config")
      .to_toml();
}

std::string_view to_string(AttentionType type) {
  switch (type) {
    case AttentionType::kMla:
      return "mla";
    case AttentionType::kMha:
      return "mha";
  }
  LATTE_FAIL() << "to_string: bad AttentionType " << static_cast<int>(type);
}

std::string_view to_string(AttentionImpl impl) {
  switch (impl) {
    case AttentionImpl::kFlash:
      return "flash";
    case AttentionImpl::kNaive:
      return "naive";
  }
  LATTE_FAIL() << "to_string: bad AttentionImpl " << static_cast<int>(impl);
}

std::string_view to_string(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kDynamic:
      return "dynamic";
    case RopeType::kYarn:
      return "yarn";
    case RopeType::kLlama3:
      return "llama3";
  }
  LATTE_FAIL() << "to_string: bad RopeType " << static_cast<int>(type);
}

std::string_view to_string(ScoringFunc func) {
  switch (func) {
    case ScoringFunc::kSigmoid:
      return "sigmoid";
    case ScoringFunc::kSoftmax:
      return "softmax";
  }
  LATTE_FAIL() << "to_string: bad ScoringFunc " << static_cast<int>(func);
}

std::string_view to_string(TopkMethod method) {
  switch (method) {
    case TopkMethod::kGreedy:
      return "greedy";
    case TopkMethod::kGroupLimitedGreedy:
      return "group_limited_greedy";
    case TopkMethod::kNoauxTc:
      return "noaux_tc";
  }
  LATTE_FAIL() << "to_string: bad TopkMethod " << static_cast<int>(method);
}

}  // namespace latte
