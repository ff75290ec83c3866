// Differentiable DeepSeekMoE ops (SPEC §3); the operands' device runs the kernels
// (engine/backend/moe_kernels.h, which also says which dtypes each device takes). A MoE layer
// records a handful of tape nodes, whatever its expert count:
//
//   logits     = moe_router_logits(x, gate_weight)                x · gate_weightᵀ at its precision
//   scores     = moe_router_scores(logits)                        sigmoid or softmax
//   choice     = moe_select_experts(scores, bias)                 gate weights [N,K] + ids [N,K]
//   plan       = moe_dispatch(choice.expert_ids)                  counting sort; no gradient
//   x_sorted   = moe_gather(x, plan)                              rows grouped by expert
//   out_sorted = moe_expert_mlps(x_sorted, plan, experts)         every routed SwiGLU MLP, one node
//   y          = moe_combine(out_sorted, choice.weights, plan)    weighted sum back per token
//   losses     = moe_seq_aux_loss / moe_switch_aux_loss(scores, ids)
//
// The gradient into the scores is the sum of what the gate weights and the balance losses send
// (autograd adds them); the selection and the counts are piecewise constant and carry none.
// moe_expert_mlps runs one GEMM per projection per expert on that expert's contiguous block of
// rows (an expert without tokens costs nothing and gets zero weight gradients), so no [N, E, d]
// temporary ever exists; on CUDA, sizing those GEMMs costs one device→host copy of the counts per
// layer (in moe_dispatch). Inputs are 2-D: callers fold [B, T, d] into [B·T, d].
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/tensor.h"
#include "kernels/cpu/moe_routing.h"

namespace latte::ops {

using kernels::cpu::check_router_spec;
using kernels::cpu::RouterScoring;
using kernels::cpu::RouterSpec;
using kernels::cpu::RouterTopkMethod;

// The router's logits [N, E] = x [N, d] · weightᵀ (weight [E, d]) in the weight's dtype: router
// math keeps the router weight's precision (fp32 under bf16 activations), while x may stay in its
// own narrower dtype (weight has x's dtype or its master dtype, master_dtype) and is read as it
// is, without a widened copy. Gradients: x's in x's dtype, the weight's in its own.
Tensor moe_router_logits(const Tensor& x, const Tensor& weight);

// logits [N, E] -> scores [N, E]: sigmoid elementwise or softmax over each row.
Tensor moe_router_scores(const Tensor& logits, RouterScoring scoring);

struct RouterChoice {
  Tensor weights;     // [N, K] gate weights, differentiable w.r.t. the scores
  Tensor expert_ids;  // [N, K] i32, rank order (best first); no gradient
};

// Chooses spec.top_k experts per token from scores [N, E] (SPEC §3 selection and weights).
// correction_bias [E] (any float dtype; converted) only steers noaux_tc and may be undefined.
RouterChoice moe_select_experts(const Tensor& scores, const Tensor& correction_bias,
                                const RouterSpec& spec);

// How the N·K assignments of one pass are grouped by expert (kernels/cpu/moe_dispatch.h): counts
// on the host, the permutation on the device of the expert ids.
struct MoeDispatch {
  int64_t n_tokens = 0;
  int64_t top_k = 0;
  int64_t n_experts = 0;
  int64_t capacity = 0;                    // per expert; negative = dropless
  int64_t dropped = 0;                     // assignments beyond capacity
  std::vector<int64_t> tokens_per_expert;  // [E] routed assignments, before the capacity cut
  std::vector<int64_t> expert_offsets;     // [E+1] kept block of each expert in sorted order
  Tensor device_offsets;                   // i64 [E+1] expert_offsets on the device
  Tensor sorted_assignment;                // i64 [N·K] sorted position -> assignment t·K + k
  Tensor assignment_position;              // i64 [N·K] its inverse, −1 if dropped
  int64_t n_kept() const { return expert_offsets.back(); }
  Device device() const { return sorted_assignment.device(); }
};
using MoeDispatchPlan = std::shared_ptr<const MoeDispatch>;

// Groups expert_ids [N, K] (i32) by expert. capacity_factor > 0 keeps at most
// ceil(capacity_factor·N·K/E) assignments per expert, in token order; 0 drops nothing. The counts
// the plan holds on the host come from the device (one copy); while_counting, when set, is called
// once to issue work that does not need them (DeepSeekMoE's shared experts) after the dispatch's
// kernels and before the wait for the copy, so the device runs it while the host waits. It must
// not call moe_dispatch.
MoeDispatchPlan moe_dispatch(const Tensor& expert_ids, int64_t n_experts, double capacity_factor,
                             const std::function<void()>& while_counting = {});

// x [N, d] -> x_sorted [n_kept, d]: the token row of each kept assignment, grouped by expert.
Tensor moe_gather(const Tensor& x, const MoeDispatchPlan& plan);

// The routed experts' weights, expert e at index e: gate and up [I, d], down [d, I].
struct MoeExpertWeights {
  std::vector<Tensor> gate_proj, up_proj, down_proj;
};

// Row block e of x_sorted [n_kept, d] -> down_e(silu(gate_e(x)) · up_e(x)); returns [n_kept, d].
// One tape node whose inputs are x_sorted and every expert weight (gate, up, down order). The
// weights may have x_sorted's master dtype, as in ops::linear: the products read them rounded to
// x_sorted's dtype and their gradients come out in their own.
Tensor moe_expert_mlps(const Tensor& x_sorted, const MoeDispatchPlan& plan,
                       const MoeExpertWeights& experts);

// y [N, d] with y_t = Σ_k weights[t, k] · out_sorted[position of (t, k)] over kept assignments.
// weights [N, K] have out_sorted's dtype, or are f32 when out_sorted is bf16 (router math stays
// fp32 under bf16 activations).
Tensor moe_combine(const Tensor& out_sorted, const Tensor& weights, const MoeDispatchPlan& plan);

// Sequence-wise balance loss (SPEC §3) of scores [n_seqs·T, E] and expert_ids [n_seqs·T, K],
// averaged over the n_seqs sequences; a scalar in the scores' dtype on their device.
Tensor moe_seq_aux_loss(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                        double alpha);

// Batch-level (Switch) balance loss (SPEC §3) over all N rows; a scalar in the scores' dtype on
// their device.
Tensor moe_switch_aux_loss(const Tensor& scores, const Tensor& expert_ids, double alpha);

// Aux-loss-free balancing, in place and not recorded: bias[i] += gamma·sign(mean(load) − load_i)
// for the bias [E] (on any device) and the global batch's load [E] (on the host).
void moe_update_correction_bias(Tensor& bias, const std::vector<int64_t>& load, double gamma);

}  // namespace latte::ops
