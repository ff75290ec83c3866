// AdamW with decoupled weight decay and bias correction, over parameter groups that each carry
// their own weight decay (matrices decay, norms and biases do not). Gradient clipping is folded
// into the update as a scale on the gradient, so clipping costs no extra pass over memory. A
// parameter's compute copy (mixed precision: its bf16 cast kept by Tensor::to) is written by the
// same update, so the next forward pass reuses it instead of casting again.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace latte {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
};

struct ParamGroup {
  std::vector<std::pair<std::string, Tensor>> params;  // name -> parameter
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);

  // One update with learning rate `lr`; every gradient is multiplied by grad_scale first.
  // Parameters without a gradient are left unchanged (their moments too).
  void step(double lr, double grad_scale = 1.0);
  int64_t step_count() const { return step_; }

  // Moments keyed "exp_avg.<name>" / "exp_avg_sq.<name>" (checkpoints), and the step.
  std::vector<std::pair<std::string, Tensor>> state() const;
  // Restores moments saved by state(); errors name any missing or misshapen entry.
  void load_state(const std::vector<std::pair<std::string, Tensor>>& state, int64_t step);

  const std::vector<ParamGroup>& groups() const { return groups_; }

 private:
  struct Slot {
    std::string name;
    Tensor param, exp_avg, exp_avg_sq;
    double weight_decay;
  };
  std::vector<ParamGroup> groups_;
  std::vector<Slot> slots_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

// sqrt(Σ ‖grad‖²) over the parameters that have a gradient (accumulated in double).
double global_grad_norm(const std::vector<Tensor>& params);
// The factor that brings `norm` down to max_norm (1 when already below; max_norm <= 0 = off).
double clip_scale(double norm, double max_norm);

}  // namespace latte
