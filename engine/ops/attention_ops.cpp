// Attention and RoPE ops (engine/ops.h); the operands' device runs the kernels
// (engine/backend/attention_kernels.h). Operands are handed to the kernels as strided views; only
// a last dimension that is not contiguous forces a copy.
#include "engine/backend/attention_kernels.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"

namespace latte::ops {

using detail::require_defined;
using detail::saved;

namespace {

// A [B, T, H, D] tensor whose last dimension is contiguous (copied when it is not). Taken by value,
// so a handed-over tensor stays the only reference to its memory.
Tensor with_unit_last_stride(Tensor t) {
  if (t.stride(-1) == 1) return t;
  return t.contiguous();
}

// The tensor rope writes: x's own memory when `reuse` (the caller holds the only reference to it;
// the pass-through features are then already in place), else a new tensor holding x's first
// `pass` features.
Tensor rotated_output(const Tensor& x, int64_t pass, bool reuse) {
  if (reuse) return Tensor::make_view(x, x.shape(), x.strides(), x.offset());
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (pass > 0) y.narrow(3, 0, pass).copy_(x.narrow(3, 0, pass));
  return y;
}

// Throws unless `t` lives on `device` (the device of the op's first operand).
void require_device(const char* op, const char* what, const Tensor& t, Device device) {
  LATTE_CHECK(t.device() == device) << op << ": " << what << " must be on " << device_name(device)
                                    << " like the other operands, got " << t.describe();
}

}  // namespace

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale,
                 bool causal, AttentionKernel kernel) {
  const char* op = kernel == AttentionKernel::kFlash ? "flash_attention" : "naive_attention";
  for (const Tensor* t : {&q_in, &k_in, &v_in}) {
    require_defined(op, *t);
    LATTE_CHECK(t->dim() == 4) << op << ": q, k and v must be [batch, tokens, heads, dim], got "
                               << t->describe();
  }
  detail::require_same_dtype(op, q_in, k_in);
  detail::require_same_dtype(op, q_in, v_in);
  const Device device = q_in.device();
  require_device(op, "k", k_in, device);
  require_device(op, "v", v_in, device);
  const Tensor q = with_unit_last_stride(q_in), kk = with_unit_last_stride(k_in),
               v = with_unit_last_stride(v_in);
  AttentionProblem p;
  p.batch = q.size(0);
  p.q_len = q.size(1);
  p.q_heads = q.size(2);
  p.qk_dim = q.size(3);
  p.kv_len = kk.size(1);
  p.kv_heads = kk.size(2);
  p.v_dim = v.size(3);
  p.scale = scale;
  p.causal = causal;
  LATTE_CHECK(kk.size(0) == p.batch && v.size(0) == p.batch && kk.size(3) == p.qk_dim &&
              v.size(1) == p.kv_len && v.size(2) == p.kv_heads)
      << op << ": inconsistent shapes q " << q.describe() << ", k " << kk.describe() << ", v "
      << v.describe();
  Tensor o = Tensor::empty(Shape{p.batch, p.q_len, p.q_heads, p.v_dim}, q.dtype(), device);
  p.q = attention_layout(q);
  p.k = attention_layout(kk);
  p.v = attention_layout(v);
  p.o = attention_layout(o);
  kernels::cpu::check_attention_problem(p, op);

  // naive: probabilities [B, H, T, S]; flash: logsumexp [B, H, T]
  Tensor stats;
  {
    profiler::Scope timing(profiler::Category::kAttention);
    const AttentionKernels& kt = attention_kernels(device);
    stats = kernel == AttentionKernel::kNaive ? kt.naive_attention_forward(p, q, kk, v, o)
                                              : kt.flash_attention_forward(p, q, kk, v, o);
  }
  return record(op, o, {q_in, k_in, v_in},
                [p, kernel, sq = saved(q), sk = saved(kk), sv = saved(v), so = saved(o),
                 stats](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor d_o = g.contiguous();  // same packed layout as o
                  // Gradients come back densely packed (their own layouts).
                  Tensor dq = Tensor::empty(sq.shape(), sq.dtype(), sq.device());
                  Tensor dk = Tensor::empty(sk.shape(), sk.dtype(), sk.device());
                  Tensor dv = Tensor::empty(sv.shape(), sv.dtype(), sv.device());
                  AttentionProblem bp = p;
                  bp.q = attention_layout(dq);
                  bp.k = attention_layout(dk);
                  bp.v = attention_layout(dv);
                  // The kernels read q/k/v with the gradient layouts, so hand them packed
                  // copies only when the saved operands are strided differently.
                  const Tensor q = sq.contiguous(), kk = sk.contiguous(), v = sv.contiguous();
                  profiler::Scope timing(profiler::Category::kAttention);
                  const AttentionKernels& kt = attention_kernels(sq.device());
                  if (kernel == AttentionKernel::kNaive)
                    kt.naive_attention_backward(bp, q, kk, v, stats, d_o, dq, dk, dv);
                  else
                    kt.flash_attention_backward(bp, q, kk, v, so, d_o, stats, dq, dk, dv);
                  return {dq, dk, dv};
                });
}

Tensor rope(Tensor x_in, const Tensor& cos, const Tensor& sin, int64_t position_offset,
            bool interleave, int64_t pass) {
  const char* op = "rope";
  profiler::Scope timing(profiler::Category::kRope);
  require_defined(op, x_in);
  require_defined(op, cos);
  require_defined(op, sin);
  LATTE_CHECK(x_in.dim() == 4 && pass >= 0 && pass < x_in.size(3) && (x_in.size(3) - pass) % 2 == 0)
      << "rope: x must be [batch, tokens, heads, dim] with an even number of rotated features "
         "after the "
      << pass << " passed through, got " << x_in.describe();
  require_device(op, "cos", cos, x_in.device());
  require_device(op, "sin", sin, x_in.device());
  const Tensor x = with_unit_last_stride(std::move(x_in));
  const int64_t tokens = x.size(1), dim = x.size(3), rotated = dim - pass;
  LATTE_CHECK(cos.dim() == 2 && cos.shape() == sin.shape() && cos.size(1) == rotated / 2 &&
              cos.is_contiguous() && sin.is_contiguous())
      << "rope: tables must be contiguous [length, " << rotated / 2 << "], got cos "
      << cos.describe() << ", sin " << sin.describe();
  LATTE_CHECK(is_floating(cos.dtype()) && cos.dtype() == sin.dtype())
      << "rope: cos and sin must share a floating dtype, got cos " << cos.describe() << ", sin "
      << sin.describe();
  LATTE_CHECK(position_offset >= 0 && position_offset + tokens <= cos.size(0))
      << "rope: positions [" << position_offset << ", " << position_offset + tokens
      << ") exceed the table length " << cos.size(0);
  // y = [x[..., :pass] | rope(x[..., pass:])]: in x's memory when nothing else can see it (a
  // leaf that requires grad keeps its values), else each feature read and written once.
  const bool leaf = x.requires_grad() && x.grad_fn() == nullptr;
  const Tensor y = rotated_output(x, pass, !leaf && x.is_sole_owner());
  attention_kernels(x.device())
      .rope_forward(x.narrow(3, pass, rotated), y.narrow(3, pass, rotated), cos, sin,
                    position_offset, interleave);
  return record(op, y, {x},
                [cos, sin, position_offset, interleave, pass,
                 rotated](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kRope);
                  // The incoming gradient is the engine's to hand over (autograd keeps no other
                  // reference to it): dx takes its memory when no other tensor shares it.
                  const bool reuse = g.is_sole_owner();
                  const Tensor dy = with_unit_last_stride(g);
                  const Tensor dx = rotated_output(dy, pass, reuse);
                  attention_kernels(dy.device())
                      .rope_backward(dy.narrow(3, pass, rotated), dx.narrow(3, pass, rotated), cos,
                                     sin, position_offset, interleave);
                  return {dx};
                });
}

}  // namespace latte::ops
