// Attention and RoPE ops (engine/ops.h) over kernels/cpu/attention_{naive,flash}.h and rope.h.
// Operands are handed to the kernels as strided views; only a last dimension that is not
// contiguous forces a copy.
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cpu/attention_naive.h"
#include "kernels/cpu/rope.h"

namespace latte::ops {

using detail::require_cpu;
using detail::saved;
namespace k = kernels::cpu;

namespace {

// A [B, T, H, D] tensor whose last dimension is contiguous (copied when it is not).
Tensor with_unit_last_stride(const Tensor& t) {
  return t.stride(-1) == 1 ? t : t.contiguous();
}

k::AttentionLayout layout_of(const Tensor& t) {
  return {t.stride(0), t.stride(1), t.stride(2)};
}

}  // namespace

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale,
                 bool causal, AttentionKernel kernel) {
  const char* op = kernel == AttentionKernel::kFlash ? "flash_attention" : "naive_attention";
  for (const Tensor* t : {&q_in, &k_in, &v_in}) {
    require_cpu(op, *t);
    LATTE_CHECK(t->dim() == 4) << op << ": q, k and v must be [batch, tokens, heads, dim], got "
                               << t->describe();
  }
  detail::require_same_dtype(op, q_in, k_in);
  detail::require_same_dtype(op, q_in, v_in);
  const Tensor q = with_unit_last_stride(q_in), kk = with_unit_last_stride(k_in),
               v = with_unit_last_stride(v_in);
  k::AttentionProblem p;
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
  Tensor o = Tensor::empty(Shape{p.batch, p.q_len, p.q_heads, p.v_dim}, q.dtype());
  p.q = layout_of(q);
  p.k = layout_of(kk);
  p.v = layout_of(v);
  p.o = layout_of(o);
  k::check_attention_problem(p, op);

  Tensor stats;  // naive: probabilities [B, H, T, S]; flash: logsumexp [B, H, T]
  if (kernel == AttentionKernel::kNaive)
    stats = Tensor::empty(Shape{p.batch, p.q_heads, p.q_len, p.kv_len}, q.dtype());
  else
    stats = Tensor::empty(Shape{p.batch, p.q_heads, p.q_len}, q.dtype());
  profiler::Scope timing(profiler::Category::kAttention);
  visit_float(q.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (kernel == AttentionKernel::kNaive)
      k::naive_attention_forward(p, q.data<T>(), kk.data<T>(), v.data<T>(), o.data<T>(),
                                 stats.data<T>());
    else
      k::flash_attention_forward(p, q.data<T>(), kk.data<T>(), v.data<T>(), o.data<T>(),
                                 stats.data<T>());
  });
  return record(op, o, {q_in, k_in, v_in},
                [p, kernel, sq = saved(q), sk = saved(kk), sv = saved(v), so = saved(o),
                 stats](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor d_o = g.contiguous();  // same packed layout as o
                  // Gradients come back densely packed (their own layouts).
                  Tensor dq = Tensor::empty(sq.shape(), sq.dtype());
                  Tensor dk = Tensor::empty(sk.shape(), sk.dtype());
                  Tensor dv = Tensor::empty(sv.shape(), sv.dtype());
                  k::AttentionProblem bp = p;
                  bp.q = layout_of(dq);
                  bp.k = layout_of(dk);
                  bp.v = layout_of(dv);
                  // The kernels read q/k/v with the gradient layouts, so hand them packed
                  // copies only when the saved operands are strided differently.
                  const Tensor q = sq.is_contiguous() ? sq : sq.contiguous();
                  const Tensor kk = sk.is_contiguous() ? sk : sk.contiguous();
                  const Tensor v = sv.is_contiguous() ? sv : sv.contiguous();
                  profiler::Scope timing(profiler::Category::kAttention);
                  visit_float(sq.dtype(), "attention backward", [&](auto tag) {
                    using T = decltype(tag);
                    if (kernel == AttentionKernel::kNaive)
                      k::naive_attention_backward(bp, q.data<T>(), kk.data<T>(), v.data<T>(),
                                                  stats.data<T>(), d_o.data<T>(), dq.data<T>(),
                                                  dk.data<T>(), dv.data<T>());
                    else
                      k::flash_attention_backward(bp, q.data<T>(), kk.data<T>(), v.data<T>(),
                                                  so.data<T>(), d_o.data<T>(), stats.data<T>(),
                                                  dq.data<T>(), dk.data<T>(), dv.data<T>());
                  });
                  return {dq, dk, dv};
                });
}

Tensor rope(const Tensor& x_in, const Tensor& cos, const Tensor& sin, int64_t position_offset,
            bool interleave) {
  const char* op = "rope";
  require_cpu(op, x_in);
  require_cpu(op, cos);
  require_cpu(op, sin);
  LATTE_CHECK(x_in.dim() == 4 && x_in.size(3) % 2 == 0)
      << "rope: x must be [batch, tokens, heads, even dim], got " << x_in.describe();
  const Tensor x = with_unit_last_stride(x_in);
  const int64_t batch = x.size(0), tokens = x.size(1), heads = x.size(2), dim = x.size(3);
  LATTE_CHECK(cos.dim() == 2 && cos.shape() == sin.shape() && cos.size(1) == dim / 2 &&
              cos.is_contiguous() && sin.is_contiguous())
      << "rope: tables must be contiguous [length, " << dim / 2 << "], got cos " << cos.describe()
      << ", sin " << sin.describe();
  LATTE_CHECK(position_offset >= 0 && position_offset + tokens <= cos.size(0))
      << "rope: positions [" << position_offset << ", " << position_offset + tokens
      << ") exceed the table length " << cos.size(0);
  detail::require_same_dtype(op, x, cos);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  visit_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::rope_forward(x.data<T>(), layout_of(x), y.data<T>(), layout_of(y), batch, tokens, heads, dim,
                    cos.data<T>(), sin.data<T>(), position_offset, interleave);
  });
  return record(op, y, {x_in},
                [cos, sin, position_offset, interleave](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor dy = g.contiguous();
                  Tensor dx = Tensor::empty(dy.shape(), dy.dtype());
                  visit_float(dy.dtype(), "rope backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::rope_backward(dy.data<T>(), layout_of(dy), dx.data<T>(), layout_of(dx),
                                     dy.size(0), dy.size(1), dy.size(2), dy.size(3), cos.data<T>(),
                                     sin.data<T>(), position_offset, interleave);
                  });
                  return {dx};
                });
}

}  // namespace latte::ops
