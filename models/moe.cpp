#include "models/moe.h"

#include <memory>

#include "engine/ops.h"
#include "engine/ops/moe_ops.h"
#include "engine/random.h"

namespace latte {

namespace {

// mlp.gate: the router weight [E, d] and the correction bias [E] of aux-loss-free balancing
// (a buffer: saved in checkpoints, never trained).
class MoeGate : public Module {
 public:
  MoeGate(int64_t n_experts, int64_t hidden, const InitContext& init) {
    weight = register_parameter("weight",
                                randn({n_experts, hidden}, *init.gen, 0.0, init.std, init.dtype));
    correction_bias =
        register_buffer("e_score_correction_bias", Tensor::zeros({n_experts}, init.dtype));
  }
  Tensor weight, correction_bias;
};

ops::RouterSpec router_spec(const MoeConfig& c) {
  ops::RouterSpec spec;
  spec.n_experts = c.n_routed_experts;
  spec.top_k = c.num_experts_per_tok;
  switch (c.topk_method) {
    case TopkMethod::kGreedy:
      spec.method = ops::RouterTopkMethod::kGreedy;
      break;
    case TopkMethod::kGroupLimitedGreedy:
      spec.method = ops::RouterTopkMethod::kGroupLimitedGreedy;
      break;
    case TopkMethod::kNoauxTc:
      spec.method = ops::RouterTopkMethod::kNoauxTc;
      break;
  }
  spec.n_group = c.n_group;
  spec.topk_group = c.topk_group;
  spec.norm_topk_prob = c.norm_topk_prob;
  spec.routed_scaling_factor = c.routed_scaling_factor;
  return spec;
}

ops::RouterScoring router_scoring(ScoringFunc f) {
  return f == ScoringFunc::kSigmoid ? ops::RouterScoring::kSigmoid : ops::RouterScoring::kSoftmax;
}

}  // namespace

MoeLayer::MoeLayer(int64_t hidden, const MoeConfig& config, std::string name,
                   const InitContext& init)
    : config_(config), name_(std::move(name)), hidden_(hidden) {
  ops::check_router_spec(router_spec(config_), name_.c_str());
  LATTE_CHECK(hidden >= 1 && config_.moe_intermediate_size >= 1 && config_.n_shared_experts >= 0)
      << name_ << ": needs hidden_size >= 1, moe_intermediate_size >= 1 and n_shared_experts >= 0, "
      << "got " << hidden << ", " << config_.moe_intermediate_size << ", "
      << config_.n_shared_experts;
  auto& gate =
      register_module("gate", std::make_unique<MoeGate>(config_.n_routed_experts, hidden, init));
  gate_weight_ = gate.weight;
  correction_bias_ = gate.correction_bias;
  auto& experts = register_module("experts", std::make_unique<ModuleList<SwiGluMlp>>());
  for (int64_t e = 0; e < config_.n_routed_experts; ++e)
    experts_.push_back(
        &experts.add(std::make_unique<SwiGluMlp>(hidden, config_.moe_intermediate_size, init)));
  if (config_.n_shared_experts > 0)
    shared_experts_ = &register_module(
        "shared_experts",
        std::make_unique<SwiGluMlp>(
            hidden, config_.n_shared_experts * config_.moe_intermediate_size, init));
  pending_load_.assign(config_.n_routed_experts, 0);
}

Tensor MoeLayer::forward(const Tensor& x, ForwardContext& ctx) {
  LATTE_CHECK(x.dim() == 3 && x.size(2) == hidden_ && x.size(0) * x.size(1) > 0)
      << name_ << ": expects a non-empty input [B, T, " << hidden_ << "], got " << x.describe();
  const int64_t B = x.size(0), T = x.size(1), N = B * T;
  const int64_t E = config_.n_routed_experts;
  const Tensor xf = x.reshape({N, hidden_});

  // The router runs in the parameters' precision (fp32 also under bf16 mixed precision: top-k
  // choices are sensitive to rounding); the experts run in the activations' dtype.
  Tensor logits = ops::moe_router_logits(xf, gate_weight_);
  if (ctx.training && config_.router_noise_std > 0) {
    LATTE_CHECK(ctx.router_noise != nullptr)
        << name_ << ": router_noise_std = " << config_.router_noise_std
        << " needs a generator in ForwardContext::router_noise when training";
    logits = ops::add(logits, randn(logits.shape(), *ctx.router_noise, 0.0,
                                    config_.router_noise_std, logits.dtype())
                                  .to(logits.device()));
  }
  const Tensor scores = ops::moe_router_scores(logits, router_scoring(config_.scoring_func));
  const bool noaux = config_.topk_method == TopkMethod::kNoauxTc;
  const ops::RouterChoice choice =
      ops::moe_select_experts(scores, noaux ? correction_bias_ : Tensor(), router_spec(config_));
  // The shared experts need no routing: issued while the dispatch's counts travel to the host,
  // they keep the device busy during that wait.
  Tensor shared;
  const ops::MoeDispatchPlan plan =
      ops::moe_dispatch(choice.expert_ids, E, config_.capacity_factor, [&] {
        if (shared_experts_ != nullptr) shared = shared_experts_->forward(xf);
      });

  ops::MoeExpertWeights weights;  // master weights: the expert GEMMs round them to xf's dtype
  for (const SwiGluMlp* expert : experts_) {
    weights.gate_proj.push_back(expert->gate_proj().weight());
    weights.up_proj.push_back(expert->up_proj().weight());
    weights.down_proj.push_back(expert->down_proj().weight());
  }
  const Tensor routed = ops::moe_expert_mlps(ops::moe_gather(xf, plan), plan, weights);
  Tensor y = ops::moe_combine(routed, choice.weights, plan);
  if (shared.defined()) y = ops::add(y, shared);

  MoeLayerStats stats;
  stats.layer = name_;
  stats.tokens_per_expert = plan->tokens_per_expert;
  stats.dropped_assignments = plan->dropped;
  if (config_.seq_aux_loss_alpha > 0) {
    Tensor loss = ops::moe_seq_aux_loss(scores, choice.expert_ids, B, config_.seq_aux_loss_alpha);
    stats.seq_aux_loss = loss.detach();
    ctx.aux_losses.push_back(loss);
  }
  if (config_.aux_loss_alpha > 0) {
    Tensor loss = ops::moe_switch_aux_loss(scores, choice.expert_ids, config_.aux_loss_alpha);
    stats.switch_loss = loss.detach();
    ctx.aux_losses.push_back(loss);
  }
  if (ctx.training)
    for (int64_t e = 0; e < E; ++e) pending_load_[e] += plan->tokens_per_expert[e];
  ctx.moe_stats.push_back(std::move(stats));
  return y.reshape({B, T, hidden_});
}

void MoeLayer::update_correction_bias(const std::vector<int64_t>& global_load) {
  const int64_t E = config_.n_routed_experts;
  LATTE_CHECK(static_cast<int64_t>(global_load.size()) == E)
      << name_ << ": update_correction_bias got a load of " << global_load.size()
      << " experts, the layer has " << E;
  if (config_.bias_update_speed != 0 && config_.topk_method == TopkMethod::kNoauxTc)
    ops::moe_update_correction_bias(correction_bias_, global_load, config_.bias_update_speed);
  pending_load_.assign(E, 0);
}

}  // namespace latte
