// The CPU table of the attention ops, over kernels/cpu/attention_{naive,flash}.h and rope.h: all
// tensors and saved statistics in the operands' dtype (F32 or F64).
#include "engine/backend/attention_kernels.h"
#include "engine/dispatch.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cpu/attention_naive.h"
#include "kernels/cpu/rope.h"

namespace latte {

namespace {

namespace k = kernels::cpu;

// A rope table in the dtype of the operand it rotates.
Tensor table_as(const Tensor& table, DType dtype) {
  return table.dtype() == dtype ? table : table.to(dtype);
}

class CpuAttentionKernels final : public AttentionKernels {
 public:
  Tensor naive_attention_forward(const AttentionProblem& p, const Tensor& q, const Tensor& kk,
                                 const Tensor& v, const Tensor& o) const override {
    Tensor probs = Tensor::empty(Shape{p.batch, p.q_heads, p.q_len, p.kv_len}, q.dtype());
    visit_float(q.dtype(), "naive_attention", [&](auto tag) {
      using T = decltype(tag);
      k::naive_attention_forward(p, q.data<T>(), kk.data<T>(), v.data<T>(), o.data<T>(),
                                 probs.data<T>());
    });
    return probs;
  }

  void naive_attention_backward(const AttentionProblem& p, const Tensor& q, const Tensor& kk,
                                const Tensor& v, const Tensor& probs, const Tensor& d_o,
                                const Tensor& dq, const Tensor& dk,
                                const Tensor& dv) const override {
    visit_float(q.dtype(), "naive_attention backward", [&](auto tag) {
      using T = decltype(tag);
      k::naive_attention_backward(p, q.data<T>(), kk.data<T>(), v.data<T>(), probs.data<T>(),
                                  d_o.data<T>(), dq.data<T>(), dk.data<T>(), dv.data<T>());
    });
  }

  Tensor flash_attention_forward(const AttentionProblem& p, const Tensor& q, const Tensor& kk,
                                 const Tensor& v, const Tensor& o) const override {
    Tensor lse = Tensor::empty(Shape{p.batch, p.q_heads, p.q_len}, q.dtype());
    visit_float(q.dtype(), "flash_attention", [&](auto tag) {
      using T = decltype(tag);
      k::flash_attention_forward(p, q.data<T>(), kk.data<T>(), v.data<T>(), o.data<T>(),
                                 lse.data<T>());
    });
    return lse;
  }

  void flash_attention_backward(const AttentionProblem& p, const Tensor& q, const Tensor& kk,
                                const Tensor& v, const Tensor& o, const Tensor& d_o,
                                const Tensor& lse, const Tensor& dq, const Tensor& dk,
                                const Tensor& dv) const override {
    visit_float(q.dtype(), "flash_attention backward", [&](auto tag) {
      using T = decltype(tag);
      k::flash_attention_backward(p, q.data<T>(), kk.data<T>(), v.data<T>(), o.data<T>(),
                                  d_o.data<T>(), lse.data<T>(), dq.data<T>(), dk.data<T>(),
                                  dv.data<T>());
    });
  }

  void rope_forward(const Tensor& x, const Tensor& y, const Tensor& cos, const Tensor& sin,
                    int64_t position_offset, bool interleave) const override {
    const Tensor c = table_as(cos, x.dtype()), s = table_as(sin, x.dtype());
    visit_float(x.dtype(), "rope", [&](auto tag) {
      using T = decltype(tag);
      k::rope_forward(x.data<T>(), attention_layout(x), y.data<T>(), attention_layout(y), x.size(0),
                      x.size(1), x.size(2), x.size(3), c.data<T>(), s.data<T>(), position_offset,
                      interleave);
    });
  }

  void rope_backward(const Tensor& dy, const Tensor& dx, const Tensor& cos, const Tensor& sin,
                     int64_t position_offset, bool interleave) const override {
    const Tensor c = table_as(cos, dy.dtype()), s = table_as(sin, dy.dtype());
    visit_float(dy.dtype(), "rope backward", [&](auto tag) {
      using T = decltype(tag);
      k::rope_backward(dy.data<T>(), attention_layout(dy), dx.data<T>(), attention_layout(dx),
                       dy.size(0), dy.size(1), dy.size(2), dy.size(3), c.data<T>(), s.data<T>(),
                       position_offset, interleave);
    });
  }
};

}  // namespace

const AttentionKernels& cpu_attention_kernels() {
  static const CpuAttentionKernels table;
  return table;
}

}  // namespace latte
