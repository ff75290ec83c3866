// The DeepSeekMoE layer (models/moe.h) and its ops (engine/ops/moe_ops.h): gradients against
// central finite differences in double through the input, router, routed and shared experts and
// the balance losses; equality with a dense SwiGLU MLP for one expert; routing statistics and
// loss values against an independent computation; the correction-bias update; capacity drops;
// router noise; SPEC parameter names.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/ops/moe_ops.h"
#include "engine/random.h"
#include "models/mlp.h"
#include "models/moe.h"
#include "support/finite_difference.h"

namespace {

using latte::DType;
using latte::ForwardContext;
using latte::Generator;
using latte::MoeConfig;
using latte::MoeLayer;
using latte::NoGradGuard;
using latte::ScoringFunc;
using latte::Tensor;
using latte::TopkMethod;
namespace ops = latte::ops;

// A layer whose weights are drawn from N(0, init_std²) by a generator seeded with `seed`.
std::unique_ptr<MoeLayer> make_layer(int64_t hidden, const MoeConfig& config, uint64_t seed,
                                     double init_std = 0.5, DType dtype = DType::F64) {
  Generator gen(seed);
  return std::make_unique<MoeLayer>(hidden, config, "mlp",
                                    latte::InitContext{&gen, init_std, dtype});
}

Tensor tensor_named(const latte::Module& layer, const std::string& name) {
  for (const auto& [n, t] : layer.named_parameters())
    if (n == name) return t;
  for (const auto& [n, t] : layer.named_buffers())
    if (n == name) return t;
  FAIL("no tensor named " << name);
  return Tensor();
}

// The sigmoid / noaux_tc configuration: groups, a shared expert, norm_topk_prob with a scaling
// factor and the sequence-wise balance loss.
MoeConfig sigmoid_noaux_config() {
  MoeConfig c;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 3;
  c.n_shared_experts = 1;
  c.moe_intermediate_size = 4;
  c.scoring_func = ScoringFunc::kSigmoid;
  c.topk_method = TopkMethod::kNoauxTc;
  c.n_group = 4;
  c.topk_group = 2;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.5;
  c.seq_aux_loss_alpha = 0.3;
  return c;
}

// The seed's router: softmax / greedy, no shared expert, unnormalized weights, Switch loss.
MoeConfig softmax_switch_config() {
  MoeConfig c;
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 2;
  c.n_shared_experts = 0;
  c.moe_intermediate_size = 5;
  c.scoring_func = ScoringFunc::kSoftmax;
  c.topk_method = TopkMethod::kGreedy;
  c.norm_topk_prob = false;
  c.aux_loss_alpha = 0.2;
  return c;
}

// Router scores [N, E] computed here from x [N, d] and the gate weight, in double.
std::vector<double> reference_scores(const std::vector<double>& x, const std::vector<double>& w,
                                     int64_t n, int64_t d, int64_t e, ScoringFunc f) {
  std::vector<double> s(n * e);
  for (int64_t t = 0; t < n; ++t) {
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < e; ++i) {
      double z = 0;
      for (int64_t j = 0; j < d; ++j) z += x[t * d + j] * w[i * d + j];
      s[t * e + i] = z;
      max = std::max(max, z);
    }
    double sum = 0;
    for (int64_t i = 0; i < e; ++i) {
      double& v = s[t * e + i];
      v = f == ScoringFunc::kSigmoid ? 1 / (1 + std::exp(-v)) : std::exp(v - max);
      sum += v;
    }
    if (f == ScoringFunc::kSoftmax)
      for (int64_t i = 0; i < e; ++i) s[t * e + i] /= sum;
  }
  return s;
}

// The routing decision as the test sees it: chosen experts per token (any order) and the
// smallest distance of any decision from a tie (group ranking and expert ranking).
struct Routing {
  std::vector<std::vector<int64_t>> chosen;
  double margin = std::numeric_limits<double>::infinity();
};

Routing reference_routing(const std::vector<double>& scores, const std::vector<double>& bias,
                          int64_t n, const MoeConfig& c) {
  const int64_t E = c.n_routed_experts, K = c.num_experts_per_tok;
  const bool groups = c.topk_method != TopkMethod::kGreedy && c.topk_group < c.n_group;
  const double minus_inf = -std::numeric_limits<double>::infinity();
  Routing r;
  for (int64_t t = 0; t < n; ++t) {
    std::vector<double> sel(E);
    for (int64_t i = 0; i < E; ++i)
      sel[i] = scores[t * E + i] + (c.topk_method == TopkMethod::kNoauxTc ? bias[i] : 0.0);
    if (groups) {
      const int64_t size = E / c.n_group;
      std::vector<std::pair<double, int64_t>> gs;
      for (int64_t g = 0; g < c.n_group; ++g) {
        std::vector<double> v(sel.begin() + g * size, sel.begin() + (g + 1) * size);
        std::sort(v.rbegin(), v.rend());
        const double score =
            c.topk_method == TopkMethod::kGroupLimitedGreedy || size == 1 ? v[0] : v[0] + v[1];
        gs.emplace_back(score, g);
      }
      std::sort(gs.begin(), gs.end(), [](auto a, auto b) { return a.first > b.first; });
      r.margin = std::min(r.margin, gs[c.topk_group - 1].first - gs[c.topk_group].first);
      for (int64_t q = c.topk_group; q < c.n_group; ++q)
        std::fill(sel.begin() + gs[q].second * size, sel.begin() + (gs[q].second + 1) * size,
                  minus_inf);
    }
    std::vector<int64_t> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return sel[a] > sel[b]; });
    if (K < E && sel[order[K]] > minus_inf)
      r.margin = std::min(r.margin, sel[order[K - 1]] - sel[order[K]]);
    r.chosen.emplace_back(order.begin(), order.begin() + K);
  }
  return r;
}

Routing layer_routing(const MoeLayer& layer, const Tensor& x) {
  const MoeConfig& c = layer.config();
  const int64_t d = x.size(-1), n = x.numel() / d;
  const std::vector<double> s = reference_scores(
      x.to_vector<double>(), tensor_named(layer, "gate.weight").to_vector<double>(), n, d,
      c.n_routed_experts, c.scoring_func);
  return reference_routing(s, layer.correction_bias().to_vector<double>(), n, c);
}

// L = Σ y ⊙ R + Σ balance losses, recorded for backward when grad mode is on.
Tensor layer_loss(MoeLayer& layer, const Tensor& x, const Tensor& r) {
  ForwardContext ctx;
  Tensor loss = ops::sum(ops::mul(layer.forward(x, ctx), r));
  for (const Tensor& aux : ctx.aux_losses) loss = ops::add(loss, aux);
  return loss;
}

// Largest error, over x and every parameter, of the autograd gradient of layer_loss against
// central differences (step 1e-6), each relative to the largest entry of that tensor's
// gradient. Also returns the largest |gradient| of the router weight.
struct GradCheck {
  double worst = 0;
  std::string where;
  double gate_grad_max = 0;
};

GradCheck check_layer_gradients(MoeLayer& layer, Tensor x, const Tensor& r) {
  std::vector<std::pair<std::string, Tensor>> leaves = {{"x", x}};
  for (const auto& p : layer.named_parameters()) leaves.push_back(p);
  for (auto& [name, t] : leaves) t.zero_grad();
  layer_loss(layer, x, r).backward();
  GradCheck out;
  for (auto& [name, t] : leaves) {
    REQUIRE_MESSAGE(t.grad().defined(), name << " received no gradient");
    const std::vector<double> analytic = t.grad().to_vector<double>();
    if (name == "gate.weight")
      for (double g : analytic) out.gate_grad_max = std::max(out.gate_grad_max, std::abs(g));
    double* data = t.data<double>();
    std::vector<double> values(data, data + t.numel());
    auto loss = [&] {
      NoGradGuard no_grad;
      std::copy(values.begin(), values.end(), data);
      return layer_loss(layer, x, r).item();
    };
    const std::vector<double> numeric = latte::test::numeric_gradient(loss, values, 1e-6);
    std::copy(values.begin(), values.end(), data);
    const double err = latte::test::max_relative_error(analytic, numeric, 1e-8);
    if (err > out.worst) {
      out.worst = err;
      out.where = name;
    }
  }
  return out;
}

Tensor random_input(int64_t b, int64_t t, int64_t d, uint64_t seed, DType dtype = DType::F64) {
  Generator gen(seed);
  Tensor x = latte::randn({b, t, d}, gen, 0.0, 1.0, dtype);
  x.set_requires_grad(true);
  return x;
}

Tensor output_weights(const Tensor& x, uint64_t seed) {
  Generator gen(seed);
  return latte::rand_uniform(x.shape(), gen, 0.5, 1.5, x.dtype());
}

// Central differences with step 1e-6 in double have truncation error ~1e-12 and rounding error
// ~1e-16/1e-6 = 1e-10 relative; 1e-6 leaves a wide margin while a wrong term (a missing
// gradient path, a wrong sign) is off by O(1).
constexpr double kGradTolerance = 1e-6;
// Routing decisions at least this far from a tie cannot flip under the 1e-6 steps above
// (a step moves a logit by at most ~1e-5 here).
constexpr double kRoutingMargin = 1e-3;

// The layer's gradients (x and every parameter) match finite differences, the output weighted
// by r.
void check_gradients(MoeLayer& layer, const Tensor& x, const Tensor& r) {
  const GradCheck g = check_layer_gradients(layer, x, r);
  INFO("worst: " << g.where);
  CHECK(g.worst < kGradTolerance);
}

// With the output weighted by zero only the balance loss remains: its gradient reaches the
// router (and through it x) and still matches finite differences.
void check_balance_loss_gradients(MoeLayer& layer, const Tensor& x) {
  const GradCheck g = check_layer_gradients(layer, x, Tensor::zeros(x.shape(), DType::F64));
  INFO("worst: " << g.where);
  CHECK(g.worst < kGradTolerance);
  CHECK(g.gate_grad_max > 1e-3);
}

}  // namespace

TEST_CASE("moe layer: parameter and buffer names follow SPEC") {
  MoeConfig c = sigmoid_noaux_config();
  c.n_routed_experts = 3;
  c.num_experts_per_tok = 2;
  c.n_group = 1;
  c.topk_group = 1;
  c.n_shared_experts = 2;
  c.moe_intermediate_size = 4;
  const auto layer = make_layer(5, c, 1);
  std::vector<std::string> names;
  std::vector<latte::Shape> shapes;
  for (const auto& [n, t] : layer->named_parameters("mlp")) {
    names.push_back(n);
    shapes.push_back(t.shape());
  }
  std::vector<std::string> expected = {"mlp.gate.weight"};
  std::vector<latte::Shape> expected_shapes = {latte::Shape{3, 5}};
  for (const std::string& prefix : std::vector<std::string>{
           "mlp.experts.0.", "mlp.experts.1.", "mlp.experts.2.", "mlp.shared_experts."}) {
    const int64_t width = prefix == "mlp.shared_experts." ? 8 : 4;
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
      expected.push_back(prefix + proj + ".weight");
      expected_shapes.push_back(std::string(proj) == "down_proj" ? latte::Shape{5, width}
                                                                 : latte::Shape{width, 5});
    }
  }
  CHECK(names == expected);
  CHECK(shapes == expected_shapes);

  const auto buffers = layer->named_buffers("mlp");
  REQUIRE(buffers.size() == 1);
  CHECK(buffers[0].first == "mlp.gate.e_score_correction_bias");
  CHECK(buffers[0].second.shape() == latte::Shape{3});
  CHECK(buffers[0].second.dtype() == DType::F64);
  CHECK(!buffers[0].second.requires_grad());
  CHECK(buffers[0].second.to_vector<double>() == std::vector<double>(3, 0.0));

  // No shared experts: no shared names; the bias buffer exists for every router.
  const auto plain = make_layer(5, softmax_switch_config(), 1);
  for (const auto& [n, t] : plain->named_parameters("mlp"))
    CHECK(n.find("shared_experts") == std::string::npos);
  REQUIRE(plain->named_buffers("mlp").size() == 1);
  CHECK(plain->named_buffers("mlp")[0].first == "mlp.gate.e_score_correction_bias");
}

TEST_CASE("moe layer: gradients, sigmoid noaux_tc with groups, shared expert, seq aux loss") {
  const MoeConfig c = sigmoid_noaux_config();
  const auto layer = make_layer(6, c, 11);
  // A bias that changes some choices, to check that it steers without entering the weights.
  Tensor bias = layer->correction_bias();
  bias.copy_(Tensor::from_vector(std::vector<double>{0.05, -0.1, 0.2, 0.0, -0.05, 0.1, 0.0, -0.2},
                                 {8}, DType::F64));
  const Tensor x = random_input(2, 4, 6, 12);
  const Routing routing = layer_routing(*layer, x);
  REQUIRE(routing.margin > kRoutingMargin);

  check_gradients(*layer, x, output_weights(x, 13));
  check_balance_loss_gradients(*layer, x);
}

TEST_CASE("moe layer: gradients, softmax greedy with the Switch loss") {
  const MoeConfig c = softmax_switch_config();
  const auto layer = make_layer(6, c, 21);
  const Tensor x = random_input(2, 5, 6, 22);
  REQUIRE(layer_routing(*layer, x).margin > kRoutingMargin);

  check_gradients(*layer, x, output_weights(x, 23));
  check_balance_loss_gradients(*layer, x);
}

TEST_CASE("moe layer: group_limited_greedy gradients") {
  MoeConfig c = softmax_switch_config();
  c.n_routed_experts = 6;
  c.topk_method = TopkMethod::kGroupLimitedGreedy;
  c.n_group = 3;
  c.topk_group = 1;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 1.5;
  c.n_shared_experts = 1;
  const auto layer = make_layer(5, c, 31);
  const Tensor x = random_input(1, 6, 5, 32);
  REQUIRE(layer_routing(*layer, x).margin > kRoutingMargin);
  check_gradients(*layer, x, output_weights(x, 33));
}

TEST_CASE("moe layer: one expert, top-1, no shared expert equals a dense SwiGLU MLP") {
  for (const bool sigmoid_normalized : {false, true}) {
    CAPTURE(sigmoid_normalized);
    MoeConfig c;
    c.n_routed_experts = 1;
    c.num_experts_per_tok = 1;
    c.n_shared_experts = 0;
    c.moe_intermediate_size = 7;
    c.topk_method = TopkMethod::kGreedy;
    // softmax over one expert is exactly 1; sigmoid normalized by its own sum is s/(s + 1e-20),
    // which rounds to exactly 1 in double.
    c.scoring_func = sigmoid_normalized ? ScoringFunc::kSigmoid : ScoringFunc::kSoftmax;
    c.norm_topk_prob = sigmoid_normalized;
    const auto layer = make_layer(6, c, 41);
    Generator gen(42);
    latte::SwiGluMlp dense(6, 7, latte::InitContext{&gen, 0.5, DType::F64});
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
      Tensor w = tensor_named(dense, std::string(proj) + ".weight");
      w.copy_(tensor_named(*layer, std::string("experts.0.") + proj + ".weight"));
    }
    Tensor x = random_input(2, 3, 6, 43);
    const Tensor r = output_weights(x, 44);

    ForwardContext ctx;
    Tensor y_moe = layer->forward(x, ctx);
    ops::sum(ops::mul(y_moe, r)).backward();
    const std::vector<double> dx_moe = x.grad().to_vector<double>();
    x.zero_grad();
    Tensor y_dense = dense.forward(x);
    ops::sum(ops::mul(y_dense, r)).backward();

    // Same GEMM shapes on the same rows in the same order: equal up to BLAS kernel choice.
    CHECK(latte::test::max_relative_error(y_moe.to_vector<double>(), y_dense.to_vector<double>()) <
          1e-13);
    CHECK(latte::test::max_relative_error(dx_moe, x.grad().to_vector<double>()) < 1e-13);
    for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
      CAPTURE(proj);
      const Tensor g_moe =
          tensor_named(*layer, std::string("experts.0.") + proj + ".weight").grad();
      const Tensor g_dense = tensor_named(dense, std::string(proj) + ".weight").grad();
      CHECK(latte::test::max_relative_error(g_moe.to_vector<double>(),
                                            g_dense.to_vector<double>()) < 1e-13);
    }
  }
}

TEST_CASE("moe layer: statistics and balance loss values match an independent computation") {
  MoeConfig c = softmax_switch_config();
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 2;
  c.seq_aux_loss_alpha = 0.1;
  c.aux_loss_alpha = 0.2;
  const int64_t B = 3, T = 7, d = 6, E = 8, K = 2, N = B * T;
  const auto layer = make_layer(d, c, 51);
  const Tensor x = random_input(B, T, d, 52);
  const std::vector<double> s = reference_scores(
      x.to_vector<double>(), tensor_named(*layer, "gate.weight").to_vector<double>(), N, d, E,
      c.scoring_func);
  const Routing routing = reference_routing(s, std::vector<double>(E, 0.0), N, c);
  REQUIRE(routing.margin > kRoutingMargin);

  std::vector<int64_t> counts(E, 0);
  for (const auto& chosen : routing.chosen)
    for (int64_t e : chosen) ++counts[e];
  // SPEC §3 formulas, written out directly (softmax scores already sum to 1 per token).
  double seq_loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> f(E, 0.0), p(E, 0.0);
    for (int64_t t = b * T; t < (b + 1) * T; ++t) {
      for (int64_t e : routing.chosen[t]) f[e] += static_cast<double>(E) / (K * T);
      for (int64_t e = 0; e < E; ++e) p[e] += s[t * E + e] / T;
    }
    for (int64_t e = 0; e < E; ++e) seq_loss += c.seq_aux_loss_alpha * f[e] * p[e] / B;
  }
  double switch_loss = 0;
  for (int64_t e = 0; e < E; ++e) {
    double mean_prob = 0;
    for (int64_t t = 0; t < N; ++t) mean_prob += s[t * E + e] / N;
    switch_loss += c.aux_loss_alpha * E * (static_cast<double>(counts[e]) / (N * K)) * mean_prob;
  }

  ForwardContext ctx;
  ctx.training = true;
  layer->forward(x, ctx);
  REQUIRE(ctx.moe_stats.size() == 1);
  const latte::MoeLayerStats& stats = ctx.moe_stats[0];
  CHECK(stats.layer == "mlp");
  CHECK(stats.tokens_per_expert == counts);
  CHECK(std::accumulate(counts.begin(), counts.end(), int64_t{0}) == N * K);
  CHECK(stats.dropped_assignments == 0);
  // Both sides compute the same sums in double in a different order: 1e-12 relative.
  CHECK(stats.seq_aux_loss.item() == doctest::Approx(seq_loss).epsilon(1e-12));
  CHECK(stats.switch_loss.item() == doctest::Approx(switch_loss).epsilon(1e-12));
  REQUIRE(ctx.aux_losses.size() == 2);
  CHECK(ctx.aux_losses[0].item() == stats.seq_aux_loss.item());
  CHECK(ctx.aux_losses[1].item() == stats.switch_loss.item());

  // The pending load adds up over training passes and ignores evaluation passes.
  CHECK(layer->pending_load() == counts);
  ForwardContext again;
  again.training = true;
  layer->forward(x, again);
  ForwardContext eval;
  layer->forward(x, eval);
  std::vector<int64_t> twice = counts;
  for (int64_t& v : twice) v *= 2;
  CHECK(layer->pending_load() == twice);
}

TEST_CASE("moe layer: correction bias update") {
  MoeConfig c = sigmoid_noaux_config();
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 1;
  c.n_group = 1;
  c.topk_group = 1;
  c.bias_update_speed = 0.01;
  const auto layer = make_layer(5, c, 61);
  ForwardContext ctx;
  ctx.training = true;
  layer->forward(random_input(1, 4, 5, 62), ctx);
  CHECK(std::accumulate(layer->pending_load().begin(), layer->pending_load().end(), int64_t{0}) ==
        4);

  // mean(load) = 5: the overloaded expert goes down, the underloaded ones up, the mean one stays.
  layer->update_correction_bias({10, 2, 5, 3});
  CHECK(layer->correction_bias().to_vector<double>() ==
        std::vector<double>{-0.01, 0.01, 0.0, 0.01});
  CHECK(layer->pending_load() == std::vector<int64_t>(4, 0));
  // mean 4: +, −, +, − (steps of exactly ±0.01 from the values above).
  layer->update_correction_bias({1, 7, 1, 7});
  CHECK(layer->correction_bias().to_vector<double>() == std::vector<double>{0.0, 0.0, 0.01, 0.0});
  CHECK_THROWS_AS(layer->update_correction_bias({1, 2, 3}), latte::Error);

  // Off when the speed is 0 or the router is not noaux_tc; the pending load is still cleared.
  for (const bool greedy : {false, true}) {
    MoeConfig off = c;
    if (greedy)
      off.topk_method = TopkMethod::kGreedy;
    else
      off.bias_update_speed = 0;
    const auto idle = make_layer(5, off, 63);
    ForwardContext train;
    train.training = true;
    idle->forward(random_input(1, 4, 5, 64), train);
    idle->update_correction_bias({10, 2, 5, 3});
    CHECK(idle->correction_bias().to_vector<double>() == std::vector<double>(4, 0.0));
    CHECK(idle->pending_load() == std::vector<int64_t>(4, 0));
  }
}

TEST_CASE("moe layer: the correction bias chooses experts but never weights them") {
  MoeConfig c = sigmoid_noaux_config();
  c.n_routed_experts = 4;
  c.n_group = 1;
  c.topk_group = 1;
  c.n_shared_experts = 0;
  c.seq_aux_loss_alpha = 0;
  const Tensor x = random_input(2, 3, 5, 72);

  // top-1 with a bias of +5 (sigmoid scores lie in (0, 1)): every token goes to expert 2.
  c.num_experts_per_tok = 1;
  const auto steered = make_layer(5, c, 71);
  Tensor bias = steered->correction_bias();
  bias.copy_(Tensor::from_vector(std::vector<double>{0, 0, 5, 0}, {4}, DType::F64));
  ForwardContext ctx;
  steered->forward(x, ctx);
  CHECK(ctx.moe_stats[0].tokens_per_expert == std::vector<int64_t>{0, 0, 6, 0});

  // top-4 of 4: the same experts whatever the bias, so the output must not change.
  c.num_experts_per_tok = 4;
  const auto all = make_layer(5, c, 71);
  ForwardContext before_ctx, after_ctx;
  const std::vector<double> before = all->forward(x, before_ctx).to_vector<double>();
  Tensor all_bias = all->correction_bias();
  all_bias.copy_(Tensor::from_vector(std::vector<double>{0.3, -0.2, 0.1, 0.7}, {4}, DType::F64));
  const std::vector<double> after = all->forward(x, after_ctx).to_vector<double>();
  // The bias reorders the 4 terms of each token's sum: rounding only.
  CHECK(latte::test::max_relative_error(after, before) < 1e-14);
}

TEST_CASE("moe layer: capacity drops assignments beyond capacity in token order") {
  MoeConfig c = sigmoid_noaux_config();
  c.n_routed_experts = 4;
  c.num_experts_per_tok = 1;
  c.n_group = 1;
  c.topk_group = 1;
  c.n_shared_experts = 0;
  c.seq_aux_loss_alpha = 0;
  c.capacity_factor = 1.0;  // ceil(1.0 · 12 · 1 / 4) = 3 per expert
  const auto layer = make_layer(5, c, 81);
  Tensor bias = layer->correction_bias();
  bias.copy_(Tensor::from_vector(std::vector<double>{5, 0, 0, 0}, {4}, DType::F64));
  const Tensor x = random_input(2, 6, 5, 82);
  ForwardContext ctx;
  const std::vector<double> y = layer->forward(x, ctx).to_vector<double>();
  CHECK(ctx.moe_stats[0].tokens_per_expert == std::vector<int64_t>{12, 0, 0, 0});
  CHECK(ctx.moe_stats[0].dropped_assignments == 9);
  for (int64_t t = 0; t < 12; ++t) {
    CAPTURE(t);
    double norm = 0;
    for (int64_t j = 0; j < 5; ++j) norm += std::abs(y[t * 5 + j]);
    if (t < 3)
      CHECK(norm > 0);
    else
      CHECK(norm == 0);  // dropped, no shared expert: exactly zero
  }
  // Gradients still match with drops (the kept set depends on token order only).
  const GradCheck check = check_layer_gradients(*layer, x, output_weights(x, 83));
  INFO("worst: " << check.where);
  CHECK(check.worst < kGradTolerance);
}

TEST_CASE("moe layer: router noise only in training, deterministic for a seed") {
  MoeConfig c = softmax_switch_config();
  c.router_noise_std = 0.5;
  MoeConfig quiet = c;
  quiet.router_noise_std = 0;
  const auto noisy = make_layer(6, c, 91);
  const auto clean = make_layer(6, quiet, 91);
  const Tensor x = random_input(2, 4, 6, 92);
  auto run = [&](MoeLayer& layer, bool training, Generator* gen) {
    ForwardContext ctx;
    ctx.training = training;
    ctx.router_noise = gen;
    return layer.forward(x, ctx).to_vector<double>();
  };
  CHECK_THROWS_AS(run(*noisy, true, nullptr), latte::Error);
  // Evaluation: no noise, no generator needed, identical to the noise-free layer.
  CHECK(run(*noisy, false, nullptr) == run(*clean, false, nullptr));
  Generator a(7), b(7), other(8);
  const std::vector<double> first = run(*noisy, true, &a);
  CHECK(first == run(*noisy, true, &b));
  CHECK(first != run(*noisy, true, &other));
  CHECK(first != run(*noisy, false, nullptr));
  // Training without noise configured ignores the generator.
  Generator unused(7);
  CHECK(run(*clean, true, &unused) == run(*clean, false, nullptr));
  CHECK(unused.offset() == 0);
}

TEST_CASE("moe layer: float32 matches float64 with the same weights") {
  const MoeConfig c = sigmoid_noaux_config();
  const auto wide = make_layer(6, c, 101);
  const auto narrow = make_layer(6, c, 101, 0.5, DType::F32);
  const auto wide_params = wide->named_parameters();
  const auto narrow_params = narrow->named_parameters();
  REQUIRE(wide_params.size() == narrow_params.size());
  for (size_t i = 0; i < wide_params.size(); ++i) {
    Tensor dst = narrow_params[i].second;
    dst.copy_(wide_params[i].second);
  }
  const Tensor x = random_input(2, 4, 6, 102);
  REQUIRE(layer_routing(*wide, x).margin > kRoutingMargin);
  ForwardContext ctx64, ctx32;
  const std::vector<double> y64 = wide->forward(x, ctx64).to_vector<double>();
  const Tensor y32 = narrow->forward(x.to(DType::F32), ctx32);
  CHECK(y32.dtype() == DType::F32);
  // float32 rounding (~6e-8) through a few short dot products: 1e-5 relative is generous.
  CHECK(latte::test::max_relative_error(y32.to_vector<double>(), y64) < 1e-5);
  CHECK(ctx32.moe_stats[0].tokens_per_expert == ctx64.moe_stats[0].tokens_per_expert);
  CHECK(ctx32.moe_stats[0].seq_aux_loss.item() ==
        doctest::Approx(ctx64.moe_stats[0].seq_aux_loss.item()).epsilon(1e-5));
}

TEST_CASE("moe layer: bad input names the layer") {
  const auto layer = make_layer(6, softmax_switch_config(), 111);
  ForwardContext ctx;
  CHECK_THROWS_WITH_AS(layer->forward(random_input(2, 3, 5, 112), ctx),
                       doctest::Contains("mlp: expects"), latte::Error);
  CHECK_THROWS_AS(layer->forward(Tensor::zeros({6, 6}, DType::F64), ctx), latte::Error);
  MoeConfig bad = softmax_switch_config();
  bad.num_experts_per_tok = 5;  // more than the 4 experts
  CHECK_THROWS_AS(make_layer(6, bad, 113), latte::Error);
}

// moe_dispatch calls its while_counting work exactly once and plans the same with or without it
// (on the CPU there is nothing to overlap; on CUDA the work runs while the counts download).
TEST_CASE("moe_dispatch runs its while_counting work once and plans the same without it") {
  const std::vector<int32_t> id_values = {2, 0, 1, 2, 3, 2, 0, 0};
  const latte::Tensor ids = latte::Tensor::from_vector(id_values, latte::Shape{4, 2});
  int calls = 0;
  const latte::ops::MoeDispatchPlan with = latte::ops::moe_dispatch(ids, 4, 0.0, [&] { ++calls; });
  const latte::ops::MoeDispatchPlan without = latte::ops::moe_dispatch(ids, 4, 0.0);
  CHECK(calls == 1);
  CHECK(with->expert_offsets == without->expert_offsets);
  CHECK(with->tokens_per_expert == without->tokens_per_expert);
  CHECK(with->expert_offsets == std::vector<int64_t>{0, 3, 4, 7, 8});
  CHECK(with->sorted_assignment.to_vector<int64_t>() ==
        without->sorted_assignment.to_vector<int64_t>());
}
