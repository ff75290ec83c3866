// DeepSeekMoE ops (engine/ops/moe_ops.h): router scores, expert selection, dispatch, gather,
// grouped expert MLPs, combine and the balance losses, each one autograd node over the MoE
// kernels. The expert MLPs call BLAS once per projection per expert on that expert's row block.
#include "engine/ops/moe_ops.h"

#include <algorithm>
#include <string>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/moe_balance.h"
#include "kernels/cpu/moe_dispatch.h"

namespace latte::ops {

using detail::require_cpu;
using detail::saved;
namespace k = kernels::cpu;

namespace {

void require_matrix(const char* op, const Tensor& t, const char* what) {
  require_cpu(op, t);
  LATTE_CHECK(t.dim() == 2) << op << ": " << what << " must be 2-D, got " << t.describe();
}

// expert_ids [N, K] i32 as a contiguous tensor, checked against scores [N, E].
Tensor checked_ids(const char* op, const Tensor& scores, const Tensor& expert_ids) {
  require_matrix(op, expert_ids, "expert_ids");
  LATTE_CHECK(expert_ids.dtype() == DType::I32)
      << op << ": expert_ids must be i32, got " << expert_ids.describe();
  LATTE_CHECK(expert_ids.size(0) == scores.size(0))
      << op << ": expert_ids " << expert_ids.describe() << " and scores " << scores.describe()
      << " differ in token count";
  LATTE_CHECK(expert_ids.size(1) <= scores.size(1))
      << op << ": top_k " << expert_ids.size(1) << " exceeds the " << scores.size(1) << " experts";
  return expert_ids.contiguous();
}

}  // namespace

Tensor moe_router_scores(const Tensor& logits, RouterScoring scoring) {
  const char* op = "moe_router_scores";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, logits, "logits");
  const Tensor lc = logits.contiguous();
  const int64_t n = lc.size(0), e = lc.size(1);
  Tensor scores = Tensor::empty(lc.shape(), lc.dtype());
  visit_float(lc.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::router_scores_forward<T>(lc.data<T>(), n, e, scoring, scores.data<T>());
  });
  return record(op, scores, {logits},
                [ss = saved(scores), scoring, n, e](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kMoe);
                  const Tensor ds = g.contiguous();
                  Tensor dlogits = Tensor::zeros(ss.shape(), ss.dtype());
                  visit_float(ss.dtype(), "moe_router_scores backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::router_scores_backward<T>(ss.data<T>(), ds.data<T>(), n, e, scoring,
                                                 dlogits.data<T>());
                  });
                  return {dlogits};
                });
}

RouterChoice moe_select_experts(const Tensor& scores, const Tensor& correction_bias,
                                const RouterSpec& spec) {
  const char* op = "moe_select_experts";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, scores, "scores");
  check_router_spec(spec, op);
  LATTE_CHECK(scores.size(1) == spec.n_experts)
      << op << ": scores " << scores.describe()
      << " do not have n_routed_experts = " << spec.n_experts << " columns";
  Tensor bias;
  if (correction_bias.defined()) {
    require_cpu(op, correction_bias);
    LATTE_CHECK(correction_bias.dim() == 1 && correction_bias.size(0) == spec.n_experts)
        << op << ": correction bias " << correction_bias.describe() << " must be ["
        << spec.n_experts << "]";
    bias = correction_bias.detach().to(scores.dtype()).contiguous();
  }
  const Tensor sc = scores.contiguous();
  const int64_t n = sc.size(0);
  RouterChoice choice;
  choice.expert_ids = Tensor::empty({n, spec.top_k}, DType::I32);
  choice.weights = Tensor::empty({n, spec.top_k}, sc.dtype());
  visit_float(sc.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::select_experts<T>(sc.data<T>(), bias.defined() ? bias.data<T>() : nullptr, n, spec,
                         choice.expert_ids.data<int32_t>(), choice.weights.data<T>());
  });
  choice.weights = record(
      op, choice.weights, {scores},
      [ss = saved(sc), ids = choice.expert_ids, spec, n](const Tensor& g) -> std::vector<Tensor> {
        profiler::Scope timing(profiler::Category::kMoe);
        const Tensor dw = g.contiguous();
        Tensor ds = Tensor::zeros(ss.shape(), ss.dtype());
        visit_float(ss.dtype(), "moe_select_experts backward", [&](auto tag) {
          using T = decltype(tag);
          k::expert_weights_backward<T>(ss.data<T>(), ids.data<int32_t>(), dw.data<T>(), n, spec,
                                        ds.data<T>());
        });
        return {ds};
      });
  return choice;
}

MoeDispatchPlan moe_dispatch(const Tensor& expert_ids, int64_t n_experts, double capacity_factor) {
  const char* op = "moe_dispatch";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, expert_ids, "expert_ids");
  LATTE_CHECK(expert_ids.dtype() == DType::I32)
      << op << ": expert_ids must be i32, got " << expert_ids.describe();
  LATTE_CHECK(n_experts >= 1) << op << ": n_experts must be >= 1, got " << n_experts;
  LATTE_CHECK(capacity_factor >= 0)
      << op << ": capacity_factor must be >= 0 (0 = dropless), got " << capacity_factor;
  const Tensor ids = expert_ids.contiguous();
  auto plan = std::make_shared<MoeDispatch>();
  plan->n_tokens = ids.size(0);
  plan->top_k = ids.size(1);
  plan->n_experts = n_experts;
  plan->capacity = k::expert_capacity(plan->n_tokens, plan->top_k, n_experts, capacity_factor);
  const int64_t n_assignments = plan->n_tokens * plan->top_k;
  plan->tokens_per_expert.assign(n_experts, 0);
  plan->expert_offsets.assign(n_experts + 1, 0);
  plan->sorted_assignment.assign(n_assignments, 0);
  plan->assignment_position.assign(n_assignments, 0);
  k::count_expert_load(ids.data<int32_t>(), n_assignments, n_experts,
                       plan->tokens_per_expert.data());
  plan->dropped =
      k::build_dispatch(ids.data<int32_t>(), plan->n_tokens, plan->top_k, n_experts, plan->capacity,
                        plan->expert_offsets.data(), plan->sorted_assignment.data(),
                        plan->assignment_position.data());
  return plan;
}

Tensor moe_gather(const Tensor& x, const MoeDispatchPlan& plan) {
  const char* op = "moe_gather";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, x, "x");
  LATTE_CHECK(x.size(0) == plan->n_tokens)
      << op << ": x " << x.describe() << " does not have the plan's " << plan->n_tokens << " rows";
  const Tensor xc = x.contiguous();
  const int64_t dim = xc.size(1);
  Tensor x_sorted = Tensor::empty({plan->n_kept(), dim}, xc.dtype());
  visit_float(xc.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::gather_rows<T>(xc.data<T>(), plan->sorted_assignment.data(), plan->n_kept(), plan->top_k,
                      dim, x_sorted.data<T>());
  });
  return record(op, x_sorted, {x},
                [plan, dim, dtype = xc.dtype()](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kMoe);
                  const Tensor dxs = g.contiguous();
                  Tensor dx = Tensor::zeros({plan->n_tokens, dim}, dtype);
                  visit_float(dtype, "moe_gather backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::gather_rows_backward<T>(dxs.data<T>(), plan->assignment_position.data(),
                                               plan->n_tokens, plan->top_k, dim, dx.data<T>());
                  });
                  return {dx};
                });
}

namespace {

// The checked, contiguous weights of the routed experts and their common sizes.
struct ExpertGeometry {
  int64_t hidden = 0, intermediate = 0;
  std::vector<Tensor> gate, up, down;  // contiguous handles, expert order
};

ExpertGeometry check_experts(const char* op, const Tensor& x_sorted, const MoeDispatch& plan,
                             const MoeExpertWeights& w) {
  const size_t n = static_cast<size_t>(plan.n_experts);
  LATTE_CHECK(w.gate_proj.size() == n && w.up_proj.size() == n && w.down_proj.size() == n)
      << op << ": expected " << n << " experts' gate/up/down weights, got " << w.gate_proj.size()
      << "/" << w.up_proj.size() << "/" << w.down_proj.size();
  ExpertGeometry geo;
  geo.hidden = x_sorted.size(1);
  geo.intermediate = w.gate_proj.front().defined() ? w.gate_proj.front().size(0) : 0;
  const Shape in_shape{geo.intermediate, geo.hidden}, out_shape{geo.hidden, geo.intermediate};
  for (size_t e = 0; e < n; ++e) {
    const Tensor* parts[3] = {&w.gate_proj[e], &w.up_proj[e], &w.down_proj[e]};
    for (const Tensor* p : parts) {
      require_cpu(op, *p);
      detail::require_same_dtype(op, x_sorted, *p);
    }
    LATTE_CHECK(w.gate_proj[e].shape() == in_shape && w.up_proj[e].shape() == in_shape &&
                w.down_proj[e].shape() == out_shape)
        << op << ": expert " << e << " has gate " << w.gate_proj[e].describe() << ", up "
        << w.up_proj[e].describe() << ", down " << w.down_proj[e].describe()
        << "; expected gate/up " << in_shape.str() << " and down " << out_shape.str();
    geo.gate.push_back(w.gate_proj[e].contiguous());
    geo.up.push_back(w.up_proj[e].contiguous());
    geo.down.push_back(w.down_proj[e].contiguous());
  }
  return geo;
}

}  // namespace

Tensor moe_expert_mlps(const Tensor& x_sorted, const MoeDispatchPlan& plan,
                       const MoeExpertWeights& experts) {
  const char* op = "moe_expert_mlps";
  profiler::Scope timing(profiler::Category::kGemm);
  require_matrix(op, x_sorted, "x_sorted");
  LATTE_CHECK(x_sorted.size(0) == plan->n_kept())
      << op << ": x_sorted " << x_sorted.describe() << " does not have the plan's "
      << plan->n_kept() << " kept rows";
  const ExpertGeometry geo = check_experts(op, x_sorted, *plan, experts);
  const int64_t d = geo.hidden, inter = geo.intermediate, rows = plan->n_kept();
  const Tensor xs = x_sorted.contiguous();
  const DType dtype = xs.dtype();
  // Phases over all experts (GEMMs, then one elementwise pass over every row, then GEMMs), so
  // BLAS and the OpenMP elementwise kernels alternate as rarely as in a dense MLP.
  Tensor gate = Tensor::empty({rows, inter}, dtype), up = Tensor::empty({rows, inter}, dtype);
  Tensor hidden = Tensor::empty({rows, inter}, dtype), out = Tensor::empty({rows, d}, dtype);
  visit_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    const T* x = xs.data<T>();
    for (int64_t e = 0; e < plan->n_experts; ++e) {
      const int64_t begin = plan->expert_offsets[e], m = plan->expert_offsets[e + 1] - begin;
      if (m == 0) continue;
      k::gemm<T>(false, true, m, inter, d, T(1), x + begin * d, d, geo.gate[e].data<T>(), d, T(0),
                 gate.data<T>() + begin * inter, inter);
      k::gemm<T>(false, true, m, inter, d, T(1), x + begin * d, d, geo.up[e].data<T>(), d, T(0),
                 up.data<T>() + begin * inter, inter);
    }
    k::swiglu_forward<T>(gate.data<T>(), up.data<T>(), hidden.data<T>(), rows * inter);
    for (int64_t e = 0; e < plan->n_experts; ++e) {
      const int64_t begin = plan->expert_offsets[e], m = plan->expert_offsets[e + 1] - begin;
      if (m == 0) continue;
      k::gemm<T>(false, true, m, d, inter, T(1), hidden.data<T>() + begin * inter, inter,
                 geo.down[e].data<T>(), inter, T(0), out.data<T>() + begin * d, d);
    }
  });

  std::vector<Tensor> inputs = {x_sorted};
  std::vector<Tensor> saved_weights;
  for (const auto* list : {&experts.gate_proj, &experts.up_proj, &experts.down_proj})
    inputs.insert(inputs.end(), list->begin(), list->end());
  for (const auto* list : {&geo.gate, &geo.up, &geo.down})
    for (const Tensor& w : *list) saved_weights.push_back(saved(w));
  std::vector<bool> need(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) need[i] = inputs[i].requires_grad();

  return record(
      op, out, inputs,
      [sx = saved(xs), sg = saved(gate), su = saved(up), sh = saved(hidden),
       ws = std::move(saved_weights), plan, need, d, inter,
       dtype](const Tensor& g) -> std::vector<Tensor> {
        profiler::Scope timing(profiler::Category::kGemm);
        const Tensor dy = g.contiguous();
        const int64_t n_exp = plan->n_experts, rows = plan->n_kept();
        // Input i > 0 is weight i − 1 of ws: gate_proj e at 1 + e, up_proj at 1 + E + e, down_proj
        // at 1 + 2E + e. An expert without rows has a zero gradient.
        std::vector<Tensor> grads(need.size());
        for (size_t i = 1; i < need.size(); ++i) {
          if (!need[i]) continue;
          const int64_t e = static_cast<int64_t>(i - 1) % n_exp;
          const bool empty = plan->expert_offsets[e + 1] == plan->expert_offsets[e];
          grads[i] = empty ? Tensor::zeros(ws[i - 1].shape(), dtype)
                           : Tensor::empty(ws[i - 1].shape(), dtype);
        }
        const bool need_inner =
            need[0] ||
            std::any_of(need.begin() + 1, need.begin() + 1 + 2 * n_exp, [](bool b) { return b; });
        Tensor dh, dgate, dup;
        if (need_inner) {
          dh = Tensor::empty({rows, inter}, dtype);
          dgate = Tensor::empty({rows, inter}, dtype);
          dup = Tensor::empty({rows, inter}, dtype);
        }
        if (need[0]) grads[0] = Tensor::empty({rows, d}, dtype);
        visit_float(dtype, "moe_expert_mlps backward", [&](auto tag) {
          using T = decltype(tag);
          // d down = dyᵀ · hidden; d hidden = dy · down
          for (int64_t e = 0; e < n_exp; ++e) {
            const int64_t begin = plan->expert_offsets[e], m = plan->expert_offsets[e + 1] - begin;
            if (m == 0) continue;
            const size_t id = 1 + 2 * n_exp + e;
            const T* dye = dy.data<T>() + begin * d;
            if (need[id])
              k::gemm<T>(true, false, d, inter, m, T(1), dye, d, sh.data<T>() + begin * inter,
                         inter, T(0), grads[id].data<T>(), inter);
            if (need_inner)
              k::gemm<T>(false, false, m, inter, d, T(1), dye, d, ws[id - 1].data<T>(), inter, T(0),
                         dh.data<T>() + begin * inter, inter);
          }
          if (!need_inner) return;
          k::swiglu_backward<T>(sg.data<T>(), su.data<T>(), dh.data<T>(), dgate.data<T>(),
                                dup.data<T>(), rows * inter);
          // dx = d gate · Wg + d up · Wu; d Wg = d gateᵀ · x; d Wu = d upᵀ · x
          for (int64_t e = 0; e < n_exp; ++e) {
            const int64_t begin = plan->expert_offsets[e], m = plan->expert_offsets[e + 1] - begin;
            if (m == 0) continue;
            const size_t ig = 1 + e, iu = 1 + n_exp + e;
            const T* xe = sx.data<T>() + begin * d;
            const T* dge = dgate.data<T>() + begin * inter;
            const T* due = dup.data<T>() + begin * inter;
            if (need[0]) {
              T* dxe = grads[0].data<T>() + begin * d;
              k::gemm<T>(false, false, m, d, inter, T(1), dge, inter, ws[ig - 1].data<T>(), d, T(0),
                         dxe, d);
              k::gemm<T>(false, false, m, d, inter, T(1), due, inter, ws[iu - 1].data<T>(), d, T(1),
                         dxe, d);
            }
            if (need[ig])
              k::gemm<T>(true, false, inter, d, m, T(1), dge, inter, xe, d, T(0),
                         grads[ig].data<T>(), d);
            if (need[iu])
              k::gemm<T>(true, false, inter, d, m, T(1), due, inter, xe, d, T(0),
                         grads[iu].data<T>(), d);
          }
        });
        return grads;
      });
}

Tensor moe_combine(const Tensor& out_sorted, const Tensor& weights, const MoeDispatchPlan& plan) {
  const char* op = "moe_combine";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, out_sorted, "out_sorted");
  require_matrix(op, weights, "weights");
  detail::require_same_dtype(op, out_sorted, weights);
  LATTE_CHECK(out_sorted.size(0) == plan->n_kept())
      << op << ": out_sorted " << out_sorted.describe() << " does not have the plan's "
      << plan->n_kept() << " kept rows";
  LATTE_CHECK(weights.size(0) == plan->n_tokens && weights.size(1) == plan->top_k)
      << op << ": weights " << weights.describe() << " must be [" << plan->n_tokens << ", "
      << plan->top_k << "]";
  const Tensor os = out_sorted.contiguous(), wc = weights.contiguous();
  const int64_t dim = os.size(1);
  Tensor y = Tensor::zeros({plan->n_tokens, dim}, os.dtype());
  visit_float(os.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::combine_forward<T>(os.data<T>(), wc.data<T>(), plan->assignment_position.data(),
                          plan->n_tokens, plan->top_k, dim, y.data<T>());
  });
  return record(
      op, y, {out_sorted, weights},
      [so = saved(os), sw = saved(wc), plan, dim](const Tensor& g) -> std::vector<Tensor> {
        profiler::Scope timing(profiler::Category::kMoe);
        const Tensor dy = g.contiguous();
        Tensor dout = Tensor::zeros(so.shape(), so.dtype());
        Tensor dw = Tensor::zeros(sw.shape(), sw.dtype());
        visit_float(so.dtype(), "moe_combine backward", [&](auto tag) {
          using T = decltype(tag);
          k::combine_backward<T>(dy.data<T>(), so.data<T>(), sw.data<T>(),
                                 plan->assignment_position.data(), plan->n_tokens, plan->top_k, dim,
                                 dout.data<T>(), dw.data<T>());
        });
        return {dout, dw};
      });
}

Tensor moe_seq_aux_loss(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                        double alpha) {
  const char* op = "moe_seq_aux_loss";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, scores, "scores");
  const Tensor ids = checked_ids(op, scores, expert_ids);
  const int64_t n = scores.size(0), e = scores.size(1), top_k = ids.size(1);
  LATTE_CHECK(n_seqs >= 1 && n % n_seqs == 0)
      << op << ": " << n << " tokens do not split into " << n_seqs << " sequences";
  const int64_t seq_len = n / n_seqs;
  const Tensor sc = scores.contiguous();
  const double value = visit_float(sc.dtype(), op, [&](auto tag) -> double {
    using T = decltype(tag);
    return k::seq_aux_loss_forward<T>(sc.data<T>(), ids.data<int32_t>(), n_seqs, seq_len, e, top_k,
                                      static_cast<T>(alpha));
  });
  return record(op, Tensor::scalar(value, sc.dtype()), {scores},
                [ss = saved(sc), ids, n_seqs, seq_len, e, top_k,
                 alpha](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kMoe);
                  Tensor ds = Tensor::zeros(ss.shape(), ss.dtype());
                  visit_float(ss.dtype(), "moe_seq_aux_loss backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::seq_aux_loss_backward<T>(ss.data<T>(), ids.data<int32_t>(), n_seqs, seq_len,
                                                e, top_k, static_cast<T>(alpha),
                                                static_cast<T>(g.item()), ds.data<T>());
                  });
                  return {ds};
                });
}

Tensor moe_switch_aux_loss(const Tensor& scores, const Tensor& expert_ids, double alpha) {
  const char* op = "moe_switch_aux_loss";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, scores, "scores");
  const Tensor ids = checked_ids(op, scores, expert_ids);
  const int64_t n = scores.size(0), e = scores.size(1), top_k = ids.size(1);
  const Tensor sc = scores.contiguous();
  const double value = visit_float(sc.dtype(), op, [&](auto tag) -> double {
    using T = decltype(tag);
    return k::switch_aux_loss_forward<T>(sc.data<T>(), ids.data<int32_t>(), n, e, top_k,
                                         static_cast<T>(alpha));
  });
  return record(op, Tensor::scalar(value, sc.dtype()), {scores},
                [ss = saved(sc), ids, n, e, top_k, alpha](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kMoe);
                  Tensor ds = Tensor::zeros(ss.shape(), ss.dtype());
                  visit_float(ss.dtype(), "moe_switch_aux_loss backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::switch_aux_loss_backward<T>(ss.data<T>(), ids.data<int32_t>(), n, e, top_k,
                                                   static_cast<T>(alpha), static_cast<T>(g.item()),
                                                   ds.data<T>());
                  });
                  return {ds};
                });
}

void moe_update_correction_bias(Tensor& bias, const std::vector<int64_t>& load, double gamma) {
  const char* op = "moe_update_correction_bias";
  profiler::Scope timing(profiler::Category::kMoe);
  require_cpu(op, bias);
  LATTE_CHECK(bias.dim() == 1 && bias.is_contiguous() &&
              static_cast<int64_t>(load.size()) == bias.size(0))
      << op << ": needs a contiguous bias [E] and a load of E experts, got " << bias.describe()
      << " and a load of " << load.size();
  visit_float(bias.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::update_correction_bias<T>(bias.data<T>(), load.data(), bias.size(0), static_cast<T>(gamma));
  });
}

}  // namespace latte::ops
