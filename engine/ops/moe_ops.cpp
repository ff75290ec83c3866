// DeepSeekMoE ops (engine/ops/moe_ops.h): router scores, expert selection, dispatch, gather,
// grouped expert MLPs, combine and the balance losses, each one autograd node over the MoE kernel
// table of the operands' device. The expert MLPs run one GEMM of the linear table per projection
// per expert on that expert's row block and the SwiGLU of the elementwise table over all rows at
// once.
#include "engine/ops/moe_ops.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend/elementwise_kernels.h"
#include "engine/backend/linear_kernels.h"
#include "engine/backend/moe_kernels.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"
#include "kernels/cpu/moe_dispatch.h"

namespace latte::ops {

using detail::require_defined;
using detail::saved;

namespace {

const MoeKernels& kernels(const Tensor& t) {
  return moe_kernels(t.device());
}

void require_matrix(const char* op, const Tensor& t, const char* what) {
  require_defined(op, t);
  LATTE_CHECK(t.dim() == 2) << op << ": " << what << " must be 2-D, got " << t.describe();
}

void require_device(const char* op, const Tensor& t, Device device, const char* what) {
  LATTE_CHECK(t.device() == device) << op << ": " << what << " " << t.describe() << " is not on "
                                    << device_name(device) << " with the other operands";
}

// expert_ids [N, K] i32 as a contiguous tensor, checked against scores [N, E].
Tensor checked_ids(const char* op, const Tensor& scores, const Tensor& expert_ids) {
  require_matrix(op, expert_ids, "expert_ids");
  require_device(op, expert_ids, scores.device(), "expert_ids");
  LATTE_CHECK(expert_ids.dtype() == DType::I32)
      << op << ": expert_ids must be i32, got " << expert_ids.describe();
  LATTE_CHECK(expert_ids.size(0) == scores.size(0))
      << op << ": expert_ids " << expert_ids.describe() << " and scores " << scores.describe()
      << " differ in token count";
  LATTE_CHECK(expert_ids.size(1) <= scores.size(1))
      << op << ": top_k " << expert_ids.size(1) << " exceeds the " << scores.size(1) << " experts";
  return expert_ids.contiguous();
}

// The upstream gradient of a scalar loss as a contiguous scalar in `dtype`, on its device.
Tensor loss_gradient(const Tensor& g, DType dtype) {
  return g.detach().to(dtype).contiguous();
}

}  // namespace

Tensor moe_router_logits(const Tensor& x, const Tensor& weight) {
  const char* op = "moe_router_logits";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, x, "x");
  require_matrix(op, weight, "weight");
  detail::require_weight_dtype(op, x, weight, "router weight");
  LATTE_CHECK(weight.size(1) == x.size(1))
      << op << ": weight " << weight.describe() << " does not match x " << x.describe()
      << " (expects [E, " << x.size(1) << "])";
  const Tensor xc = x.contiguous(), wc = weight.contiguous();
  Tensor logits = Tensor::empty({x.size(0), weight.size(0)}, weight.dtype(), x.device());
  kernels(xc).router_logits(xc, wc, logits);
  return record(
      op, logits, {x, weight},
      [sx = saved(xc), sw = saved(wc), need_x = x.requires_grad(),
       need_w = weight.requires_grad()](const Tensor& g) {
        profiler::Scope timing(profiler::Category::kMoe);
        const Tensor dl = g.contiguous();
        const Tensor dx = need_x ? Tensor::empty(sx.shape(), sx.dtype(), sx.device()) : Tensor();
        const Tensor dw = need_w ? Tensor::empty(sw.shape(), sw.dtype(), sw.device()) : Tensor();
        kernels(sx).router_logits_backward(dl, sx, sw, dx, dw);
        return std::vector<Tensor>{dx, dw};
      });
}

Tensor moe_router_scores(const Tensor& logits, RouterScoring scoring) {
  const char* op = "moe_router_scores";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, logits, "logits");
  const Tensor lc = logits.contiguous();
  Tensor scores = Tensor::empty(lc.shape(), lc.dtype(), lc.device());
  kernels(lc).router_scores_forward(lc, scoring, scores);
  return record(op, scores, {logits}, [ss = saved(scores), scoring](const Tensor& g) {
    profiler::Scope timing(profiler::Category::kMoe);
    const Tensor ds = g.contiguous();
    Tensor dlogits = Tensor::zeros(ss.shape(), ss.dtype(), ss.device());
    kernels(ss).router_scores_backward(ss, ds, scoring, dlogits);
    return std::vector<Tensor>{dlogits};
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
    require_device(op, correction_bias, scores.device(), "correction bias");
    LATTE_CHECK(correction_bias.dim() == 1 && correction_bias.size(0) == spec.n_experts)
        << op << ": correction bias " << correction_bias.describe() << " must be ["
        << spec.n_experts << "]";
    bias = correction_bias.detach().to(scores.dtype()).contiguous();
  }
  const Tensor sc = scores.contiguous();
  const int64_t n = sc.size(0);
  RouterChoice choice;
  choice.expert_ids = Tensor::empty({n, spec.top_k}, DType::I32, sc.device());
  choice.weights = Tensor::empty({n, spec.top_k}, sc.dtype(), sc.device());
  kernels(sc).select_experts(sc, bias, spec, choice.expert_ids, choice.weights);
  choice.weights = record(op, choice.weights, {scores},
                          [ss = saved(sc), ids = choice.expert_ids, spec](const Tensor& g) {
                            profiler::Scope timing(profiler::Category::kMoe);
                            const Tensor dw = g.contiguous();
                            Tensor ds = Tensor::zeros(ss.shape(), ss.dtype(), ss.device());
                            kernels(ss).expert_weights_backward(ss, ids, dw, spec, ds);
                            return std::vector<Tensor>{ds};
                          });
  return choice;
}

MoeDispatchPlan moe_dispatch(const Tensor& expert_ids, int64_t n_experts, double capacity_factor,
                             const std::function<void()>& while_counting) {
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
  plan->capacity =
      kernels::cpu::expert_capacity(plan->n_tokens, plan->top_k, n_experts, capacity_factor);
  ExpertDispatch d = kernels(ids).build_dispatch(ids, n_experts, plan->capacity, while_counting);
  plan->dropped = d.dropped;
  plan->tokens_per_expert = std::move(d.tokens_per_expert);
  plan->expert_offsets = std::move(d.host_offsets);
  plan->device_offsets = std::move(d.expert_offsets);
  plan->sorted_assignment = std::move(d.sorted_assignment);
  plan->assignment_position = std::move(d.assignment_position);
  return plan;
}

Tensor moe_gather(const Tensor& x, const MoeDispatchPlan& plan) {
  const char* op = "moe_gather";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, x, "x");
  require_device(op, x, plan->device(), "x");
  LATTE_CHECK(x.size(0) == plan->n_tokens)
      << op << ": x " << x.describe() << " does not have the plan's " << plan->n_tokens << " rows";
  const Tensor xc = x.contiguous();
  const int64_t dim = xc.size(1);
  Tensor x_sorted = Tensor::empty({plan->n_kept(), dim}, xc.dtype(), xc.device());
  kernels(xc).gather_rows(xc, plan->sorted_assignment, plan->device_offsets, plan->top_k, x_sorted);
  return record(op, x_sorted, {x}, [plan, dim, dtype = xc.dtype()](const Tensor& g) {
    profiler::Scope timing(profiler::Category::kMoe);
    const Tensor dxs = g.contiguous();
    Tensor dx = Tensor::empty({plan->n_tokens, dim}, dtype, dxs.device());
    kernels(dxs).gather_rows_backward(dxs, plan->assignment_position, plan->top_k, dx);
    return std::vector<Tensor>{dx};
  });
}

namespace {

// The checked, contiguous weights of the routed experts and their common sizes.
struct ExpertGeometry {
  int64_t hidden = 0, intermediate = 0;
  std::vector<Tensor> gate, up, down;  // contiguous, in the rows' dtype, expert order
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
      require_defined(op, *p);
      require_device(op, *p, x_sorted.device(), "expert weight");
      detail::require_weight_dtype(op, x_sorted, *p, "expert weight");
    }
    LATTE_CHECK(w.gate_proj[e].shape() == in_shape && w.up_proj[e].shape() == in_shape &&
                w.down_proj[e].shape() == out_shape)
        << op << ": expert " << e << " has gate " << w.gate_proj[e].describe() << ", up "
        << w.up_proj[e].describe() << ", down " << w.down_proj[e].describe()
        << "; expected gate/up " << in_shape.str() << " and down " << out_shape.str();
    // Master weights enter the products rounded to the rows' dtype (Tensor::detached_cast).
    const DType dtype = x_sorted.dtype();
    geo.gate.push_back(w.gate_proj[e].detached_cast(dtype).contiguous());
    geo.up.push_back(w.up_proj[e].detached_cast(dtype).contiguous());
    geo.down.push_back(w.down_proj[e].detached_cast(dtype).contiguous());
  }
  return geo;
}

// What the backward of moe_expert_mlps reads: detached handles of the forward's tensors.
struct ExpertMlpSaved {
  Tensor x, gate, up, hidden;                // x_sorted and the [n_kept, I] intermediates
  std::vector<Tensor> gate_w, up_w, down_w;  // contiguous weights, expert order
  MoeDispatchPlan plan;
  // Per input (x_sorted, then gate_proj, up_proj, down_proj of each expert): whether it needs a
  // gradient, and the gradient's dtype (the input's own: master weights get theirs).
  std::vector<bool> need;
  std::vector<DType> dtypes;
};

// The experts' products over the row blocks [offsets[e], offsets[e+1]) of sorted rows, one GEMM of
// the device's linear table per expert with rows (blocks of experts without rows are not touched):
// c[block] = a[block] · op(w[e]) + beta · c[block], a [rows, k], c [rows, n], op(w) = wᵀ for
// w [n, k] when trans_w (the [out, in] weight layout), else w [k, n].
void expert_gemm(const Tensor& a, const std::vector<int64_t>& offsets, const std::vector<Tensor>& w,
                 bool trans_w, double beta, const Tensor& c) {
  const LinearKernels& blas = linear_kernels(a.device());
  const int64_t in = a.size(1), out = c.size(1);
  for (size_t e = 0; e < w.size(); ++e) {
    const int64_t begin = offsets[e], m = offsets[e + 1] - begin;
    if (m == 0) continue;
    blas.gemm(false, trans_w, 1, m, out, in, 1.0, {a, begin * in, in, 0},
              {w[e], 0, trans_w ? in : out, 0}, beta, {c, begin * out, out, 0});
  }
}

// grads[e] = dy[block]ᵀ · x[block] ([n, k] from dy [rows, n] and x [rows, k]) for each expert with
// rows and a defined gradient, in the gradient's dtype (x's or its master dtype: the GEMM's
// accumulators stored unrounded).
void expert_weight_grad(const Tensor& dy, const Tensor& x, const std::vector<int64_t>& offsets,
                        const std::vector<Tensor>& grads) {
  const LinearKernels& blas = linear_kernels(x.device());
  const int64_t out = dy.size(1), in = x.size(1);
  for (size_t e = 0; e < grads.size(); ++e) {
    const int64_t begin = offsets[e], m = offsets[e + 1] - begin;
    if (m == 0 || !grads[e].defined()) continue;
    blas.gemm(true, false, 1, out, in, m, 1.0, {dy, begin * out, out, 0}, {x, begin * in, in, 0},
              0.0, {grads[e], 0, in, 0});
  }
}

// Input 0 is x_sorted, then gate_proj e at 1 + e, up_proj at 1 + E + e, down_proj at 1 + 2E + e.
// An expert without rows has a zero gradient; a gradient not needed stays undefined.
std::vector<Tensor> expert_mlps_backward(const ExpertMlpSaved& s, const Tensor& g) {
  profiler::Scope timing(profiler::Category::kGemm);
  const Tensor dy = g.contiguous();
  const std::vector<int64_t>& offsets = s.plan->expert_offsets;
  const size_t n_exp = static_cast<size_t>(s.plan->n_experts);
  const int64_t rows = s.plan->n_kept(), d = s.x.size(1), inter = s.gate.size(1);
  const DType dtype = s.x.dtype();
  const Device device = s.x.device();
  std::vector<Tensor> grads(s.need.size());
  std::vector<Tensor> dgate_w(n_exp), dup_w(n_exp), ddown_w(n_exp);
  std::vector<Tensor>* per_projection[3] = {&dgate_w, &dup_w, &ddown_w};
  for (size_t p = 0; p < 3; ++p) {
    const Shape shape = p == 2 ? Shape{d, inter} : Shape{inter, d};
    for (size_t e = 0; e < n_exp; ++e) {
      const size_t i = 1 + p * n_exp + e;
      if (!s.need[i]) continue;
      const bool empty = offsets[e + 1] == offsets[e];
      grads[i] = empty ? Tensor::zeros(shape, s.dtypes[i], device)
                       : Tensor::empty(shape, s.dtypes[i], device);
      (*per_projection[p])[e] = grads[i];
    }
  }
  // d down = dyᵀ · hidden
  expert_weight_grad(dy, s.hidden, offsets, ddown_w);
  const bool need_inner =
      std::any_of(s.need.begin(), s.need.begin() + 1 + 2 * n_exp, [](bool b) { return b; });
  if (!need_inner) return grads;
  // d hidden = dy · down, through the SwiGLU into d gate and d up
  Tensor dh = Tensor::empty({rows, inter}, dtype, device);
  Tensor dgate = Tensor::empty({rows, inter}, dtype, device);
  Tensor dup = Tensor::empty({rows, inter}, dtype, device);
  expert_gemm(dy, offsets, s.down_w, false, 0.0, dh);
  elementwise_kernels(device).swiglu_backward(s.gate, s.up, dh, dgate, dup);
  // dx = d gate · Wg + d up · Wu; d Wg = d gateᵀ · x; d Wu = d upᵀ · x
  if (s.need[0]) {
    grads[0] = Tensor::empty({rows, d}, dtype, device);
    expert_gemm(dgate, offsets, s.gate_w, false, 0.0, grads[0]);
    expert_gemm(dup, offsets, s.up_w, false, 1.0, grads[0]);
  }
  expert_weight_grad(dgate, s.x, offsets, dgate_w);
  expert_weight_grad(dup, s.x, offsets, dup_w);
  return grads;
}

std::vector<Tensor> detached(const std::vector<Tensor>& list) {
  std::vector<Tensor> handles;
  for (const Tensor& t : list) handles.push_back(saved(t));
  return handles;
}

}  // namespace

Tensor moe_expert_mlps(const Tensor& x_sorted, const MoeDispatchPlan& plan,
                       const MoeExpertWeights& experts) {
  const char* op = "moe_expert_mlps";
  profiler::Scope timing(profiler::Category::kGemm);
  require_matrix(op, x_sorted, "x_sorted");
  require_device(op, x_sorted, plan->device(), "x_sorted");
  LATTE_CHECK(x_sorted.size(0) == plan->n_kept())
      << op << ": x_sorted " << x_sorted.describe() << " does not have the plan's "
      << plan->n_kept() << " kept rows";
  const ExpertGeometry geo = check_experts(op, x_sorted, *plan, experts);
  const int64_t d = geo.hidden, inter = geo.intermediate, rows = plan->n_kept();
  const Tensor xs = x_sorted.contiguous();
  const DType dtype = xs.dtype();
  const Device device = xs.device();
  const std::vector<int64_t>& offsets = plan->expert_offsets;
  // Phases over all experts (GEMMs, then one elementwise pass over every row, then GEMMs), so
  // BLAS and the elementwise kernels alternate as rarely as in a dense MLP.
  Tensor gate = Tensor::empty({rows, inter}, dtype, device);
  Tensor up = Tensor::empty({rows, inter}, dtype, device);
  Tensor hidden = Tensor::empty({rows, inter}, dtype, device);
  Tensor out = Tensor::empty({rows, d}, dtype, device);
  expert_gemm(xs, offsets, geo.gate, true, 0.0, gate);
  expert_gemm(xs, offsets, geo.up, true, 0.0, up);
  elementwise_kernels(device).swiglu_forward(gate, up, hidden);
  expert_gemm(hidden, offsets, geo.down, true, 0.0, out);

  std::vector<Tensor> inputs = {x_sorted};
  for (const auto* list : {&experts.gate_proj, &experts.up_proj, &experts.down_proj})
    inputs.insert(inputs.end(), list->begin(), list->end());
  ExpertMlpSaved s;
  s.x = saved(xs);
  s.gate = saved(gate);
  s.up = saved(up);
  s.hidden = saved(hidden);
  s.gate_w = detached(geo.gate);
  s.up_w = detached(geo.up);
  s.down_w = detached(geo.down);
  s.plan = plan;
  for (const Tensor& t : inputs) {
    s.need.push_back(t.requires_grad());
    s.dtypes.push_back(t.dtype());
  }
  return record(op, out, inputs,
                [s = std::move(s)](const Tensor& g) { return expert_mlps_backward(s, g); });
}

Tensor moe_combine(const Tensor& out_sorted, const Tensor& weights, const MoeDispatchPlan& plan) {
  const char* op = "moe_combine";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, out_sorted, "out_sorted");
  require_matrix(op, weights, "weights");
  require_device(op, out_sorted, plan->device(), "out_sorted");
  require_device(op, weights, plan->device(), "weights");
  LATTE_CHECK(weights.dtype() == out_sorted.dtype() ||
              (weights.dtype() == DType::F32 && out_sorted.dtype() == DType::BF16))
      << op << ": weights " << weights.describe() << " must have the dtype of out_sorted "
      << out_sorted.describe() << " (or be f32 with bf16 rows)";
  LATTE_CHECK(out_sorted.size(0) == plan->n_kept())
      << op << ": out_sorted " << out_sorted.describe() << " does not have the plan's "
      << plan->n_kept() << " kept rows";
  LATTE_CHECK(weights.size(0) == plan->n_tokens && weights.size(1) == plan->top_k)
      << op << ": weights " << weights.describe() << " must be [" << plan->n_tokens << ", "
      << plan->top_k << "]";
  const Tensor os = out_sorted.contiguous(), wc = weights.contiguous();
  Tensor y = Tensor::empty({plan->n_tokens, os.size(1)}, os.dtype(), os.device());
  kernels(os).combine_forward(os, wc, plan->assignment_position, y);
  return record(op, y, {out_sorted, weights},
                [so = saved(os), sw = saved(wc), plan](const Tensor& g) {
                  profiler::Scope timing(profiler::Category::kMoe);
                  const Tensor dy = g.contiguous();
                  Tensor dout = Tensor::empty(so.shape(), so.dtype(), so.device());
                  Tensor dw = Tensor::empty(sw.shape(), sw.dtype(), sw.device());
                  kernels(so).combine_backward(dy, so, sw, plan->assignment_position, dout, dw);
                  return std::vector<Tensor>{dout, dw};
                });
}

Tensor moe_seq_aux_loss(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                        double alpha) {
  const char* op = "moe_seq_aux_loss";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, scores, "scores");
  const Tensor ids = checked_ids(op, scores, expert_ids);
  const int64_t n = scores.size(0);
  LATTE_CHECK(n_seqs >= 1 && n % n_seqs == 0)
      << op << ": " << n << " tokens do not split into " << n_seqs << " sequences";
  const Tensor sc = scores.contiguous();
  Tensor loss = Tensor::empty(Shape{}, sc.dtype(), sc.device());
  kernels(sc).seq_aux_loss_forward(sc, ids, n_seqs, alpha, loss);
  return record(op, loss, {scores}, [ss = saved(sc), ids, n_seqs, alpha](const Tensor& g) {
    profiler::Scope timing(profiler::Category::kMoe);
    Tensor ds = Tensor::zeros(ss.shape(), ss.dtype(), ss.device());
    kernels(ss).seq_aux_loss_backward(ss, ids, n_seqs, alpha, loss_gradient(g, ss.dtype()), ds);
    return std::vector<Tensor>{ds};
  });
}

Tensor moe_switch_aux_loss(const Tensor& scores, const Tensor& expert_ids, double alpha) {
  const char* op = "moe_switch_aux_loss";
  profiler::Scope timing(profiler::Category::kMoe);
  require_matrix(op, scores, "scores");
  const Tensor ids = checked_ids(op, scores, expert_ids);
  const Tensor sc = scores.contiguous();
  Tensor loss = Tensor::empty(Shape{}, sc.dtype(), sc.device());
  kernels(sc).switch_aux_loss_forward(sc, ids, alpha, loss);
  return record(op, loss, {scores}, [ss = saved(sc), ids, alpha](const Tensor& g) {
    profiler::Scope timing(profiler::Category::kMoe);
    Tensor ds = Tensor::zeros(ss.shape(), ss.dtype(), ss.device());
    kernels(ss).switch_aux_loss_backward(ss, ids, alpha, loss_gradient(g, ss.dtype()), ds);
    return std::vector<Tensor>{ds};
  });
}

void moe_update_correction_bias(Tensor& bias, const std::vector<int64_t>& load, double gamma) {
  const char* op = "moe_update_correction_bias";
  profiler::Scope timing(profiler::Category::kMoe);
  require_defined(op, bias);
  LATTE_CHECK(bias.dim() == 1 && bias.is_contiguous() &&
              static_cast<int64_t>(load.size()) == bias.size(0))
      << op << ": needs a contiguous bias [E] and a load of E experts, got " << bias.describe()
      << " and a load of " << load.size();
  kernels(bias).update_correction_bias(bias, load, gamma);
}

}  // namespace latte::ops
