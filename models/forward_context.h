// What one forward pass collects besides its output: auxiliary losses (MoE balance losses, MTP)
// and per-MoE-layer routing statistics, plus the switches that differ between training and
// evaluation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace latte {

struct MoeLayerStats {
  std::string layer;                       // module name, e.g. "model.layers.3.mlp"
  std::vector<int64_t> tokens_per_expert;  // routed assignments per expert in this pass
  int64_t dropped_assignments = 0;         // beyond capacity (0 when dropless)
  // Each enabled balance loss (a scalar detached from autograd; undefined when off). Kept on the
  // device: reading them is left to whoever reports them, after the step's work is queued.
  Tensor seq_aux_loss, switch_loss;
};

struct ForwardContext {
  bool training = false;
  Generator* router_noise = nullptr;  // required when training with router_noise_std > 0
  std::vector<Tensor> aux_losses;     // scalars added to the training loss
  std::vector<MoeLayerStats> moe_stats;
};

}  // namespace latte
