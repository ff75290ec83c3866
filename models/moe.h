// DeepSeekMoE feed-forward layer (SPEC §3): a router (mlp.gate.weight, scores in the model's
// float type), fine-grained routed SwiGLU experts (mlp.experts.{e}.*), optional shared experts
// (mlp.shared_experts.*), and the correction bias of aux-loss-free balancing
// (mlp.gate.e_score_correction_bias, a buffer: it chooses experts but is never trained).
// Tokens are grouped by expert with a counting sort, each expert runs one GEMM chain over its
// tokens, and the outputs are scattered back weighted by the gate (the few tape nodes this takes
// are listed in engine/ops/moe_ops.h). Balance losses go to ForwardContext::aux_losses; the
// expert load of training passes accumulates for the bias update after the optimizer step.
#pragma once

#include <string>
#include <vector>

#include "models/config.h"
#include "models/feed_forward.h"
#include "models/layers.h"
#include "models/mlp.h"

namespace latte {

class MoeLayer : public FeedForward {
 public:
  MoeLayer(int64_t hidden, const MoeConfig& config, std::string name, const InitContext& init);

  // x [B, T, d]. Adds enabled balance losses to ctx.aux_losses and this pass's statistics to
  // ctx.moe_stats; accumulates the expert load used by the next bias update.
  Tensor forward(const Tensor& x, ForwardContext& ctx) override;

  // Tokens routed to each expert by the forward passes since the last bias update.
  const std::vector<int64_t>& pending_load() const { return pending_load_; }
  // b_i += bias_update_speed · sign(mean(load) − load_i) with the global batch's load (summed
  // over data-parallel ranks by the caller), then clears the pending load.
  void update_correction_bias(const std::vector<int64_t>& global_load);

  const MoeConfig& config() const { return config_; }
  const std::string& name() const { return name_; }
  const Tensor& correction_bias() const { return correction_bias_; }

 private:
  MoeConfig config_;
  std::string name_;
  int64_t hidden_;
  Tensor gate_weight_;      // [E, d]
  Tensor correction_bias_;  // [E]
  std::vector<SwiGluMlp*> experts_;
  SwiGluMlp* shared_experts_ = nullptr;
  std::vector<int64_t> pending_load_;
};

}  // namespace latte
