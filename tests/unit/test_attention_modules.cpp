// The attention modules (models/attention.h) end to end: gradients of the input and of every
// parameter against central finite differences in double for MLA (q_lora_rank > 0 and = 0, the
// seed's head shapes and DeepSeek-V3's scaled down, with and without bias, naive and flash
// kernels, default / linear / yarn rope, both rope layouts) and for grouped-query MHA; and the
// naive and flash kernels giving the same module outputs and gradients in f32 at a length that
// is not a multiple of the flash tile.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/random.h"
#include "models/attention.h"
#include "models/rope_cache.h"
#include "support/finite_difference.h"
#include "support/gradcheck.h"

namespace {

using latte::AttentionImpl;
using latte::AttentionType;
using latte::DType;
using latte::Generator;
using latte::ModelConfig;
using latte::RopeType;
using latte::Tensor;

struct Case {
  std::string name;
  ModelConfig config;
  int64_t tokens;
};

// An MLA config: head dims v / rope / nope as in the SPEC tables.
ModelConfig mla(int64_t hidden, int64_t heads, int64_t q_lora_rank, int64_t kv_lora_rank,
                int64_t v_dim, int64_t rope_dim, int64_t nope_dim, bool bias, AttentionImpl impl,
                bool interleave) {
  ModelConfig c;
  c.hidden_size = hidden;
  c.max_position_embeddings = 64;
  c.attention.type = AttentionType::kMla;
  c.attention.num_attention_heads = heads;
  c.attention.q_lora_rank = q_lora_rank;
  c.attention.kv_lora_rank = kv_lora_rank;
  c.attention.v_head_dim = v_dim;
  c.attention.qk_rope_head_dim = rope_dim;
  c.attention.qk_nope_head_dim = nope_dim;
  c.attention.attention_bias = bias;
  c.attention.impl = impl;
  c.attention.rope_interleave = interleave;
  return c;
}

ModelConfig mha(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t head_dim, bool bias,
                AttentionImpl impl, bool interleave) {
  ModelConfig c;
  c.hidden_size = hidden;
  c.max_position_embeddings = 64;
  c.attention.type = AttentionType::kMha;
  c.attention.num_attention_heads = heads;
  c.attention.num_key_value_heads = kv_heads;
  c.attention.head_dim = head_dim;
  c.attention.attention_bias = bias;
  c.attention.impl = impl;
  c.attention.rope_interleave = interleave;
  return c;
}

ModelConfig with_linear_rope(ModelConfig c) {
  c.rope.type = RopeType::kLinear;
  c.rope.factor = 2;
  c.rope.theta = 50000;
  return c;
}

// DeepSeek-V3's YaRN settings with an original context (4) shorter than the tested lengths, so
// the scaled frequencies, the cos/sin factor and mscale² in the softmax scale all take effect.
ModelConfig with_yarn_rope(ModelConfig c) {
  c.rope.type = RopeType::kYarn;
  c.rope.factor = 4;
  c.rope.original_max_position_embeddings = 4;
  c.rope.mscale = 1;
  c.rope.mscale_all_dim = 1;
  return c;
}

constexpr AttentionImpl kNaive = AttentionImpl::kNaive;
constexpr AttentionImpl kFlash = AttentionImpl::kFlash;

std::vector<Case> gradient_cases() {
  return {
      {"mla 64/64/0 q_lora bias naive default interleave",
       mla(8, 1, 4, 4, 64, 64, 0, true, kNaive, true), 5},
      {"mla 64/64/0 q_proj flash default halves", mla(8, 1, 0, 4, 64, 64, 0, false, kFlash, false),
       6},
      {"mla 64/32/16 q_lora bias naive default halves",
       mla(8, 2, 4, 4, 64, 32, 16, true, kNaive, false), 7},
      {"mla 64/32/16 q_proj bias flash linear interleave",
       with_linear_rope(mla(8, 1, 0, 4, 64, 32, 16, true, kFlash, true)), 8},
      {"mla 48/40/8 q_lora bias flash default interleave",
       mla(8, 1, 4, 4, 48, 40, 8, true, kFlash, true), 9},
      {"mla 48/40/8 q_proj naive yarn halves",
       with_yarn_rope(mla(8, 2, 0, 4, 48, 40, 8, false, kNaive, false)), 6},
      {"mla v3-shaped 16/8/16 q_lora flash yarn interleave",
       with_yarn_rope(mla(16, 2, 8, 8, 16, 8, 16, false, kFlash, true)), 7},
      {"mla v3-shaped 16/8/16 q_proj bias naive yarn halves",
       with_yarn_rope(mla(16, 2, 0, 8, 16, 8, 16, true, kNaive, false)), 9},
      {"mla v3-shaped 16/8/16 q_lora bias naive linear interleave",
       with_linear_rope(mla(16, 2, 8, 8, 16, 8, 16, true, kNaive, true)), 5},
      {"mha gqa 4/2 bias flash default interleave", mha(16, 4, 2, 8, true, kFlash, true), 7},
      {"mha gqa 4/2 bias naive yarn halves", with_yarn_rope(mha(16, 4, 2, 8, true, kNaive, false)),
       8},
  };
}

// The names SPEC §1 gives the parameters of an attention block with this config.
std::vector<std::string> expected_parameter_names(const ModelConfig& c) {
  const auto& a = c.attention;
  std::vector<std::string> names;
  auto linear = [&](const std::string& name, bool has_bias) {
    names.push_back(name + ".weight");
    if (has_bias) names.push_back(name + ".bias");
  };
  if (a.type == AttentionType::kMha) {
    for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) linear(p, a.attention_bias);
  } else {
    if (a.q_lora_rank > 0) {
      linear("q_a_proj", a.attention_bias);
      names.push_back("q_a_layernorm.weight");
      linear("q_b_proj", false);
    } else {
      linear("q_proj", a.attention_bias);
    }
    linear("kv_a_proj_with_mqa", a.attention_bias);
    names.push_back("kv_a_layernorm.weight");
    linear("kv_b_proj", false);
    linear("o_proj", a.attention_bias);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<latte::AttentionBlock> make_block(const ModelConfig& config, uint64_t seed,
                                                  double init_std, DType dtype) {
  Generator gen(seed);
  return latte::make_attention(config, latte::InitContext{&gen, init_std, dtype});
}

// Biases start at 0 and norm weights at 1; moving them off those values lets a wrong use of
// either show in the other gradients.
void perturb_bias_and_norm(const latte::AttentionBlock& block, uint64_t seed) {
  Generator gen(seed);
  for (const auto& [name, t] : block.named_parameters()) {
    if (name.ends_with(".bias")) {
      Tensor(t).copy_(latte::randn(t.shape(), gen, 0.0, 0.3, t.dtype()));
    } else if (name.ends_with("layernorm.weight")) {
      Tensor(t).copy_(latte::randn(t.shape(), gen, 1.0, 0.2, t.dtype()));
    }
  }
}

latte::RopeCache rope_cache_for(const ModelConfig& c, DType dtype) {
  return latte::RopeCache(c.rope, latte::rope_dim(c.attention), c.max_position_embeddings, dtype);
}

// Largest |a - b| relative to max |b|.
double relative_difference(const Tensor& a, const Tensor& b) {
  return latte::test::max_relative_error(a.to_vector<double>(), b.to_vector<double>());
}

}  // namespace

// Tolerance 1e-6 relative to each gradient's largest magnitude, as in test_op_gradients.cpp: with
// eps = 1e-6 the central difference has truncation error ~eps² times third derivatives of O(1)
// (init std 0.3 keeps scores O(1)) and rounding error ~1e-16·|L|/eps ≈ 1e-8 for these losses, so
// a correct backward agrees to ~1e-8 while a wrong one (a missed path, a wrong scale) is off by
// O(1).
TEST_CASE("attention modules: input and parameter gradients match finite differences in double") {
  for (const Case& c : gradient_cases()) {
    SUBCASE(c.name.c_str()) {
      const auto block = make_block(c.config, 7, 0.3, DType::F64);
      perturb_bias_and_norm(*block, 8);
      latte::RopeCache rope = rope_cache_for(c.config, DType::F64);
      Generator gen(9);
      Tensor x = latte::randn({2, c.tokens, c.config.hidden_size}, gen, 0.0, 1.0, DType::F64);
      x.set_requires_grad(true);

      std::vector<Tensor> inputs{x};
      std::vector<std::string> names;
      std::string listing = "0 x";
      for (const auto& [name, t] : block->named_parameters()) {
        listing += ", " + std::to_string(inputs.size()) + " " + name;
        inputs.push_back(t);
        names.push_back(name);
      }
      std::sort(names.begin(), names.end());
      CHECK(names == expected_parameter_names(c.config));

      const auto r = latte::test::gradcheck(
          [&](const std::vector<Tensor>& in) { return block->forward(in[0], rope); }, inputs);
      INFO(c.name << ": worst " << r.worst << " (inputs: " << listing << ")");
      CHECK(r.max_relative_error < 1e-6);
    }
  }
}

// Tolerance 1e-5 relative: both kernels compute the same sums in f32 (epsilon 1.2e-7) in a
// different order (flash rescales running sums tile by tile), which moves results by ~1e-6 of
// their scale after the projections; a masking or tile-edge error at T = 70 (one full 64-wide
// tile and a partial one) changes them by O(1).
TEST_CASE("attention modules: naive and flash kernels agree in f32 at T = 70") {
  struct Variant {
    std::string name;
    ModelConfig config;
  };
  const std::vector<Variant> variants = {
      // The seed's mixed_heads and hybrid_lora rows (SPEC §6), hidden 512, 8 heads.
      {"mixed_heads 64/32/16", mla(512, 8, 32, 48, 64, 32, 16, true, kNaive, true)},
      {"hybrid_lora 48/40/8", mla(512, 8, 32, 32, 48, 40, 8, true, kNaive, false)},
      {"mha gqa 8/2", mha(512, 8, 2, 64, true, kNaive, true)},
  };
  for (const Variant& variant : variants) {
    SUBCASE(variant.name.c_str()) {
      const int64_t B = 2, T = 70, d = variant.config.hidden_size;
      Generator gen(3);
      const Tensor x0 = latte::randn({B, T, d}, gen);
      const Tensor dy = latte::randn({B, T, d}, gen);

      struct Run {
        Tensor y, dx;
        latte::Module::NamedTensors grads;
      };
      auto run = [&](AttentionImpl impl) {
        ModelConfig config = variant.config;
        config.attention.impl = impl;
        const auto block = make_block(config, 11, 0.1, DType::F32);
        perturb_bias_and_norm(*block, 12);
        latte::RopeCache rope = rope_cache_for(config, DType::F32);
        Tensor x = x0.clone();
        x.set_requires_grad(true);
        Run out;
        out.y = block->forward(x, rope);
        latte::run_backward(out.y, dy);
        out.y = out.y.detach();
        out.dx = x.grad();
        for (const auto& [name, t] : block->named_parameters())
          out.grads.emplace_back(name, t.grad());
        return out;
      };
      const Run naive = run(kNaive);
      const Run flash = run(kFlash);

      CHECK(relative_difference(flash.y, naive.y) < 1e-5);
      CHECK(relative_difference(flash.dx, naive.dx) < 1e-5);
      REQUIRE(flash.grads.size() == naive.grads.size());
      for (size_t i = 0; i < naive.grads.size(); ++i) {
        INFO(naive.grads[i].first);
        REQUIRE(naive.grads[i].second.defined());
        REQUIRE(flash.grads[i].second.defined());
        CHECK(relative_difference(flash.grads[i].second, naive.grads[i].second) < 1e-5);
      }
    }
  }
}
