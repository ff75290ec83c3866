// Kernel table of the DeepSeekMoE ops (engine/ops/moe_ops.cpp): router scores, expert selection,
// the dispatch permutation, gather and combine, the expert GEMMs over row blocks, the balance
// losses and the correction-bias update. All tensors are contiguous and on the table's device.
// Dtypes: on the CPU everything is f32 or f64 (one dtype per call). On CUDA the router, the gate
// weights, the balance losses and the correction bias are f32 (router math is fp32 by design),
// token rows (x, expert inputs and outputs) are f32 or bf16, and the combine weights stay f32.
// The router and balance-loss *_backward methods ADD into their gradient outputs (the ops
// zero-fill them), so the gradients of the gate weights and of the balance losses can share one
// d scores buffer; gather_rows_backward and the combine passes write theirs.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/tensor.h"
#include "kernels/cpu/moe_routing.h"

namespace latte {

// The N·K (token, expert) assignments of one pass grouped by expert (kernels/cpu/moe_dispatch.h):
// the permutation on the device of the ids, where gather and combine read it, and the counts on
// the host, which size the expert GEMMs and feed the load statistics.
struct ExpertDispatch {
  Tensor expert_offsets;              // i64 [E+1] kept block of each expert in sorted order
  Tensor sorted_assignment;           // i64 [N·K] sorted position -> assignment t·K + k
  Tensor assignment_position;         // i64 [N·K] assignment -> sorted position, −1 if dropped
  std::vector<int64_t> host_offsets;  // [E+1] expert_offsets on the host
  std::vector<int64_t> tokens_per_expert;  // [E] routed assignments, before the capacity cut
  int64_t dropped = 0;                     // assignments beyond capacity
};

class MoeKernels {
 public:
  virtual ~MoeKernels() = default;

  // ---- router logits (kernels/cpu/moe_router_logits.h) ----
  // logits [N, E] = x [N, d] · wᵀ (w [E, d]) in w's dtype; x has w's dtype or a narrower one
  // (bf16 rows under an f32 router on CUDA, f32 rows under an f64 router on the CPU).
  virtual void router_logits(const Tensor& x, const Tensor& w, const Tensor& logits) const = 0;
  // dx = dlogits · w (in x's dtype) and dw = dlogitsᵀ · x (in w's dtype), written; either may be
  // undefined when not needed.
  virtual void router_logits_backward(const Tensor& dlogits, const Tensor& x, const Tensor& w,
                                      const Tensor& dx, const Tensor& dw) const = 0;

  // ---- router (kernels/cpu/moe_routing.h); logits, scores, dscores, dlogits are [N, E] ----
  virtual void router_scores_forward(const Tensor& logits, kernels::cpu::RouterScoring scoring,
                                     const Tensor& scores) const = 0;
  // dlogits += d scores / d logits applied to dscores, from the forward's scores.
  virtual void router_scores_backward(const Tensor& scores, const Tensor& dscores,
                                      kernels::cpu::RouterScoring scoring,
                                      const Tensor& dlogits) const = 0;
  // expert_ids [N, K] (i32) and weights [N, K] (scores' dtype) chosen by a spec that passed
  // check_router_spec; correction_bias [E] in the scores' dtype, or undefined (zero bias).
  virtual void select_experts(const Tensor& scores, const Tensor& correction_bias,
                              const kernels::cpu::RouterSpec& spec, const Tensor& expert_ids,
                              const Tensor& weights) const = 0;
  // dscores += d weights / d scores applied to dweights [N, K].
  virtual void expert_weights_backward(const Tensor& scores, const Tensor& expert_ids,
                                       const Tensor& dweights, const kernels::cpu::RouterSpec& spec,
                                       const Tensor& dscores) const = 0;

  // ---- dispatch and combine (kernels/cpu/moe_dispatch.h) ----
  // Stable counting sort of expert_ids [N, K] (i32) by expert, keeping at most `capacity`
  // assignments per expert (negative: all). Throws latte::Error when an id is outside
  // [0, n_experts). On CUDA the host counts cost one device→host copy; while_counting (when set)
  // issues work that needs no counts between the dispatch's launches and the wait for that copy,
  // so the device has it to run while the host waits (it must not dispatch itself).
  virtual ExpertDispatch build_dispatch(const Tensor& expert_ids, int64_t n_experts,
                                        int64_t capacity,
                                        const std::function<void()>& while_counting) const = 0;
  // x_sorted [n_kept, d] = the row of x [N, d] of each kept assignment, in sorted order;
  // expert_offsets is the dispatch's device tensor (CUDA reads n_kept from its last entry).
  virtual void gather_rows(const Tensor& x, const Tensor& sorted_assignment,
                           const Tensor& expert_offsets, int64_t top_k,
                           const Tensor& x_sorted) const = 0;
  // dx [N, d] = the sum of the rows of dx_sorted [n_kept, d] of each token's kept assignments.
  virtual void gather_rows_backward(const Tensor& dx_sorted, const Tensor& assignment_position,
                                    int64_t top_k, const Tensor& dx) const = 0;
  // y [N, d] = Σ_k weights[t, k] · out_sorted[position of (t, k)] over kept assignments;
  // weights [N, K].
  virtual void combine_forward(const Tensor& out_sorted, const Tensor& weights,
                               const Tensor& assignment_position, const Tensor& y) const = 0;
  // For each kept assignment a of token t at sorted position p:
  //   dout_sorted[p] = weights[a] · dy[t];  dweights[a] = dy[t] · out_sorted[p]
  // (dweights[a] = 0 for a dropped assignment). These three write every element of their outputs.
  virtual void combine_backward(const Tensor& dy, const Tensor& out_sorted, const Tensor& weights,
                                const Tensor& assignment_position, const Tensor& dout_sorted,
                                const Tensor& dweights) const = 0;

  // ---- load balancing (kernels/cpu/moe_balance.h); scores [n_seqs·T, E], expert_ids [.., K] ----
  // loss (0-dim, scores' dtype, on the device: no host sync) = the sequence-wise balance loss,
  // averaged over the n_seqs sequences.
  virtual void seq_aux_loss_forward(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                                    double alpha, const Tensor& loss) const = 0;
  // dscores += dloss · d(seq_aux_loss) / d scores; dloss is a 0-dim tensor in the scores' dtype.
  virtual void seq_aux_loss_backward(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                                     double alpha, const Tensor& dloss,
                                     const Tensor& dscores) const = 0;
  // The batch-level (Switch) loss over all rows and its backward, as above.
  virtual void switch_aux_loss_forward(const Tensor& scores, const Tensor& expert_ids, double alpha,
                                       const Tensor& loss) const = 0;
  virtual void switch_aux_loss_backward(const Tensor& scores, const Tensor& expert_ids,
                                        double alpha, const Tensor& dloss,
                                        const Tensor& dscores) const = 0;
  // bias [E] += gamma · sign(mean(load) − load_i) for the host load [E].
  virtual void update_correction_bias(const Tensor& bias, const std::vector<int64_t>& load,
                                      double gamma) const = 0;
};

inline const MoeKernels& moe_kernels(Device device) {
  return checked_table(backend_for(device).moe, device, "MoE");
}

}  // namespace latte
