// Differentiable tensor operations. Each records one autograd node (engine/autograd.h) whose
// backward calls the matching kernel. Binary elementwise ops broadcast NumPy-style (sizes align
// from the last dimension; a size-1 or missing dimension repeats). Every op validates shapes,
// dtypes and devices and names itself and the shapes in its error.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"

namespace latte::ops {

// ---- elementwise ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double s);
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
// silu(gate) * up, fused.
Tensor swiglu(const Tensor& gate, const Tensor& up);
// dst += src in place, same shape; not recorded by autograd.
void add_(Tensor& dst, const Tensor& src);

// ---- reductions ----
Tensor sum(const Tensor& x);   // all elements -> scalar
Tensor mean(const Tensor& x);  // all elements -> scalar
// Sums `x` down to `shape` over broadcast dimensions (the adjoint of broadcasting).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- matrix products ----
// a [..., M, K] (or [..., K, M] with trans_a), b [..., K, N] or a shared 2-D b; -> [..., M, N].
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x [..., in] · weightᵀ (weight [out, in]) + bias [out] (optional) -> [..., out]. weight and bias
// may have x's master dtype (master_dtype: mixed precision): the products read them rounded to x's
// dtype (a parameter's kept compute copy) and their gradients come out in their own dtype, the
// weight's straight from the GEMM's fp32 accumulators.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- shape ----
Tensor concat(const std::vector<Tensor>& parts, int dim);
// Views of consecutive pieces of `sizes` along `dim` (sizes must add up to the dimension).
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);
// A view of x repeated along broadcast dimensions to `shape` (stride 0 there; NumPy rules).
Tensor expand(const Tensor& x, const Shape& shape);
// expand(x, shape) as a contiguous copy.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

// ---- neural-network ops ----
// ids (i32, any shape) -> [..., dim] rows of weight [vocab, dim], in `dtype`: the weight's, or one
// whose master dtype the weight has (mixed precision: the rows are rounded as they are copied and
// the gradient is summed into the weight's dtype, with no cast of the table or of the rows).
Tensor embedding(const Tensor& ids, const Tensor& weight, DType dtype);
Tensor embedding(const Tensor& ids, const Tensor& weight);
// RMSNorm over the last dimension of x with a per-feature weight of x's dtype or its master dtype
// (read as stored; its gradient comes out in its own dtype).
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps);
Tensor softmax(const Tensor& x);  // over the last dimension
// Mean of -log softmax(logits)[target] over rows whose target != ignore_index.
// logits [..., vocab], targets i32 with logits' leading shape.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100);
// Inverted dropout with probability p (identity when p == 0).
Tensor dropout(const Tensor& x, double p, Generator& gen);

// ---- attention ----
enum class AttentionKernel { kNaive, kFlash };
// softmax(scale · q kᵀ [causal]) v per batch and query head. q [B, T, Hq, Dqk],
// k [B, S, Hkv, Dqk], v [B, S, Hkv, Dv] (Hq a multiple of Hkv: grouped-query attention), any
// strides with a contiguous last dimension (views are read in place) -> [B, T, Hq, Dv].
// kNaive materializes the [B, Hq, T, S] probabilities; kFlash keeps only a [B, Hq, T]
// logsumexp and recomputes scores in the backward pass. Same results either way.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                 AttentionKernel kernel);
// Rotary embedding of x [B, T, H, D] with tables cos/sin [L, R/2] over the last R = D − pass
// features of each head (R even); the first `pass` features pass unchanged (MLA's [q_nope | q_pe]
// heads without a separate concat). Token t uses table row position_offset + t. interleave:
// pairs (x0,x1),(x2,x3)…; otherwise halves.
// x is taken by value: when the caller hands over the only reference to its memory (a temporary
// or std::move of a non-leaf whose memory no other tensor, view or saved operand shares), the
// result takes over that memory and only the rotated features are rewritten; otherwise it is a
// new tensor. The backward does the same with its incoming gradient.
Tensor rope(Tensor x, const Tensor& cos, const Tensor& sin, int64_t position_offset,
            bool interleave, int64_t pass = 0);

}  // namespace latte::ops
