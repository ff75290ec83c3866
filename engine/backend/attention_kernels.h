// Kernel table of the attention ops (engine/ops/attention_ops.cpp): naive and flash attention,
// forward and backward, and rotary position embedding. Operands are [batch, tokens, heads, dim]
// tensors with a contiguous last dimension on the table's device, read in place through their
// strides: attention through the layouts of the AttentionProblem the op built and checked
// (gradients share the layouts of their operands: dq/dk/dv those of q/k/v, d_o that of o).
// What the backward pass needs beyond the operands (probabilities, logsumexp, workspaces) is
// allocated by the table on its device, in the dtype its kernels use.
#pragma once

#include <cstdint>

#include "engine/backend/backend.h"
#include "engine/tensor.h"
#include "kernels/cpu/attention.h"

namespace latte {

using kernels::cpu::AttentionLayout;
using kernels::cpu::AttentionProblem;

// The layout of a [batch, tokens, heads, dim] tensor with a contiguous last dimension.
inline AttentionLayout attention_layout(const Tensor& t) {
  return {t.stride(0), t.stride(1), t.stride(2)};
}

class AttentionKernels {
 public:
  virtual ~AttentionKernels() = default;

  // o = softmax(scale · q kᵀ [causal]) v, materializing the scores. Returns the probabilities
  // [batch, q_heads, q_len, kv_len] (q's dtype) that naive_attention_backward reads.
  virtual Tensor naive_attention_forward(const AttentionProblem& p, const Tensor& q,
                                         const Tensor& k, const Tensor& v,
                                         const Tensor& o) const = 0;
  // Overwrites dq, dk and dv with the gradients for upstream d_o.
  virtual void naive_attention_backward(const AttentionProblem& p, const Tensor& q, const Tensor& k,
                                        const Tensor& v, const Tensor& probs, const Tensor& d_o,
                                        const Tensor& dq, const Tensor& dk,
                                        const Tensor& dv) const = 0;

  // The same o without the score matrix. Returns the row logsumexp [batch, q_heads, q_len] that
  // flash_attention_backward reads (its dtype is the device's choice: q's on the CPU, F32 on
  // CUDA). Throws latte::Error naming flash_attention when the device's kernels do not take the
  // problem (head dims above the CUDA limit).
  virtual Tensor flash_attention_forward(const AttentionProblem& p, const Tensor& q,
                                         const Tensor& k, const Tensor& v,
                                         const Tensor& o) const = 0;
  // Overwrites dq, dk and dv with the gradients for upstream d_o, from the forward's o and lse.
  virtual void flash_attention_backward(const AttentionProblem& p, const Tensor& q, const Tensor& k,
                                        const Tensor& v, const Tensor& o, const Tensor& d_o,
                                        const Tensor& lse, const Tensor& dq, const Tensor& dk,
                                        const Tensor& dv) const = 0;

  // y = rope(x) (kernels/cpu/rope.h) on x's full head dim: token t uses row position_offset + t
  // of cos and sin, contiguous [length, dim / 2] tables of one floating dtype; tables in another
  // dtype than the kernels read (x's on the CPU, F32 on CUDA) are converted first.
  virtual void rope_forward(const Tensor& x, const Tensor& y, const Tensor& cos, const Tensor& sin,
                            int64_t position_offset, bool interleave) const = 0;
  // dx = the gradient of rope_forward for upstream dy, same tables.
  virtual void rope_backward(const Tensor& dy, const Tensor& dx, const Tensor& cos,
                             const Tensor& sin, int64_t position_offset, bool interleave) const = 0;
};

inline const AttentionKernels& attention_kernels(Device device) {
  return checked_table(backend_for(device).attention, device, "attention");
}

}  // namespace latte
