// The CPU table of the DeepSeekMoE ops, over kernels/cpu/moe_router_logits.h, moe_routing.h,
// moe_dispatch.h and moe_balance.h.
#include "engine/backend/moe_kernels.h"
#include "engine/dispatch.h"
#include "kernels/cpu/moe_balance.h"
#include "kernels/cpu/moe_dispatch.h"
#include "kernels/cpu/moe_router_logits.h"

namespace latte {

namespace {

namespace k = kernels::cpu;

class CpuMoeKernels final : public MoeKernels {
 public:
  void router_logits(const Tensor& x, const Tensor& w, const Tensor& logits) const override {
    visit_float_pair(x.dtype(), w.dtype(), "moe_router_logits", [&](auto xt, auto wt) {
      using X = decltype(xt);
      using W = decltype(wt);
      k::router_logits_forward<X, W>(x.data<X>(), w.data<W>(), x.size(0), x.size(1), w.size(0),
                                     logits.data<W>());
    });
  }

  void router_logits_backward(const Tensor& dlogits, const Tensor& x, const Tensor& w,
                              const Tensor& dx, const Tensor& dw) const override {
    visit_float_pair(x.dtype(), w.dtype(), "moe_router_logits backward", [&](auto xt, auto wt) {
      using X = decltype(xt);
      using W = decltype(wt);
      k::router_logits_backward<X, W>(dlogits.data<W>(), x.data<X>(), w.data<W>(), x.size(0),
                                      x.size(1), w.size(0), dx.defined() ? dx.data<X>() : nullptr,
                                      dw.defined() ? dw.data<W>() : nullptr);
    });
  }

  void router_scores_forward(const Tensor& logits, k::RouterScoring scoring,
                             const Tensor& scores) const override {
    visit_float(logits.dtype(), "moe_router_scores", [&](auto tag) {
      using T = decltype(tag);
      k::router_scores_forward<T>(logits.data<T>(), logits.size(0), logits.size(1), scoring,
                                  scores.data<T>());
    });
  }

  void router_scores_backward(const Tensor& scores, const Tensor& dscores, k::RouterScoring scoring,
                              const Tensor& dlogits) const override {
    visit_float(scores.dtype(), "moe_router_scores backward", [&](auto tag) {
      using T = decltype(tag);
      k::router_scores_backward<T>(scores.data<T>(), dscores.data<T>(), scores.size(0),
                                   scores.size(1), scoring, dlogits.data<T>());
    });
  }

  void select_experts(const Tensor& scores, const Tensor& correction_bias,
                      const k::RouterSpec& spec, const Tensor& expert_ids,
                      const Tensor& weights) const override {
    visit_float(scores.dtype(), "moe_select_experts", [&](auto tag) {
      using T = decltype(tag);
      k::select_experts<T>(scores.data<T>(),
                           correction_bias.defined() ? correction_bias.data<T>() : nullptr,
                           scores.size(0), spec, expert_ids.data<int32_t>(), weights.data<T>());
    });
  }

  void expert_weights_backward(const Tensor& scores, const Tensor& expert_ids,
                               const Tensor& dweights, const k::RouterSpec& spec,
                               const Tensor& dscores) const override {
    visit_float(scores.dtype(), "moe_select_experts backward", [&](auto tag) {
      using T = decltype(tag);
      k::expert_weights_backward<T>(scores.data<T>(), expert_ids.data<int32_t>(),
                                    dweights.data<T>(), scores.size(0), spec, dscores.data<T>());
    });
  }

  ExpertDispatch build_dispatch(const Tensor& expert_ids, int64_t n_experts, int64_t capacity,
                                const std::function<void()>& while_counting) const override {
    if (while_counting) while_counting();  // nothing to overlap on the CPU: first, in issue order
    const int64_t n_tokens = expert_ids.size(0), top_k = expert_ids.size(1);
    const int64_t n_assignments = n_tokens * top_k;
    const int32_t* ids = expert_ids.data<int32_t>();
    ExpertDispatch d;
    d.expert_offsets = Tensor::empty({n_experts + 1}, DType::I64);
    d.sorted_assignment = Tensor::empty({n_assignments}, DType::I64);
    d.assignment_position = Tensor::empty({n_assignments}, DType::I64);
    d.tokens_per_expert.assign(n_experts, 0);
    k::count_expert_load(ids, n_assignments, n_experts, d.tokens_per_expert.data());
    int64_t* offsets = d.expert_offsets.data<int64_t>();
    d.dropped = k::build_dispatch(ids, n_tokens, top_k, n_experts, capacity, offsets,
                                  d.sorted_assignment.data<int64_t>(),
                                  d.assignment_position.data<int64_t>());
    d.host_offsets.assign(offsets, offsets + n_experts + 1);
    return d;
  }

  void gather_rows(const Tensor& x, const Tensor& sorted_assignment, const Tensor&, int64_t top_k,
                   const Tensor& x_sorted) const override {
    visit_float(x.dtype(), "moe_gather", [&](auto tag) {
      using T = decltype(tag);
      k::gather_rows<T>(x.data<T>(), sorted_assignment.data<int64_t>(), x_sorted.size(0), top_k,
                        x.size(1), x_sorted.data<T>());
    });
  }

  void gather_rows_backward(const Tensor& dx_sorted, const Tensor& assignment_position,
                            int64_t top_k, const Tensor& dx) const override {
    visit_float(dx.dtype(), "moe_gather backward", [&](auto tag) {
      using T = decltype(tag);
      k::gather_rows_backward<T>(dx_sorted.data<T>(), assignment_position.data<int64_t>(),
                                 dx.size(0), top_k, dx.size(1), dx.data<T>());
    });
  }

  void combine_forward(const Tensor& out_sorted, const Tensor& weights,
                       const Tensor& assignment_position, const Tensor& y) const override {
    visit_float(out_sorted.dtype(), "moe_combine", [&](auto tag) {
      using T = decltype(tag);
      k::combine_forward<T>(out_sorted.data<T>(), weights.data<T>(),
                            assignment_position.data<int64_t>(), y.size(0), weights.size(1),
                            y.size(1), y.data<T>());
    });
  }

  void combine_backward(const Tensor& dy, const Tensor& out_sorted, const Tensor& weights,
                        const Tensor& assignment_position, const Tensor& dout_sorted,
                        const Tensor& dweights) const override {
    visit_float(out_sorted.dtype(), "moe_combine backward", [&](auto tag) {
      using T = decltype(tag);
      k::combine_backward<T>(dy.data<T>(), out_sorted.data<T>(), weights.data<T>(),
                             assignment_position.data<int64_t>(), dy.size(0), weights.size(1),
                             dy.size(1), dout_sorted.data<T>(), dweights.data<T>());
    });
  }

  void seq_aux_loss_forward(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                            double alpha, const Tensor& loss) const override {
    visit_float(scores.dtype(), "moe_seq_aux_loss", [&](auto tag) {
      using T = decltype(tag);
      *loss.data<T>() = k::seq_aux_loss_forward<T>(scores.data<T>(), expert_ids.data<int32_t>(),
                                                   n_seqs, scores.size(0) / n_seqs, scores.size(1),
                                                   expert_ids.size(1), static_cast<T>(alpha));
    });
  }

  void seq_aux_loss_backward(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                             double alpha, const Tensor& dloss,
                             const Tensor& dscores) const override {
    visit_float(scores.dtype(), "moe_seq_aux_loss backward", [&](auto tag) {
      using T = decltype(tag);
      k::seq_aux_loss_backward<T>(scores.data<T>(), expert_ids.data<int32_t>(), n_seqs,
                                  scores.size(0) / n_seqs, scores.size(1), expert_ids.size(1),
                                  static_cast<T>(alpha), *dloss.data<T>(), dscores.data<T>());
    });
  }

  void switch_aux_loss_forward(const Tensor& scores, const Tensor& expert_ids, double alpha,
                               const Tensor& loss) const override {
    visit_float(scores.dtype(), "moe_switch_aux_loss", [&](auto tag) {
      using T = decltype(tag);
      *loss.data<T>() = k::switch_aux_loss_forward<T>(scores.data<T>(), expert_ids.data<int32_t>(),
                                                      scores.size(0), scores.size(1),
                                                      expert_ids.size(1), static_cast<T>(alpha));
    });
  }

  void switch_aux_loss_backward(const Tensor& scores, const Tensor& expert_ids, double alpha,
                                const Tensor& dloss, const Tensor& dscores) const override {
    visit_float(scores.dtype(), "moe_switch_aux_loss backward", [&](auto tag) {
      using T = decltype(tag);
      k::switch_aux_loss_backward<T>(scores.data<T>(), expert_ids.data<int32_t>(), scores.size(0),
                                     scores.size(1), expert_ids.size(1), static_cast<T>(alpha),
                                     *dloss.data<T>(), dscores.data<T>());
    });
  }

  void update_correction_bias(const Tensor& bias, const std::vector<int64_t>& load,
                              double gamma) const override {
    visit_float(bias.dtype(), "moe_update_correction_bias", [&](auto tag) {
      using T = decltype(tag);
      k::update_correction_bias<T>(bias.data<T>(), load.data(), bias.size(0),
                                   static_cast<T>(gamma));
    });
  }
};

}  // namespace

const MoeKernels& cpu_moe_kernels() {
  static const CpuMoeKernels table;
  return table;
}

}  // namespace latte
