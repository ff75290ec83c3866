// matmul and linear (engine/ops.h) over the device's GEMMs (engine/backend/linear_kernels.h).
// Operands are passed to the GEMM as they lie in memory: a transposed view becomes a transpose
// flag, not a copy. linear folds the leading dimensions into the GEMM's M and fuses the bias.
#include "engine/backend/elementwise_kernels.h"
#include "engine/backend/linear_kernels.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"

namespace latte::ops {

using detail::require_defined;
using detail::saved;

namespace {

// A stack of matrices as BLAS sees them: `data` + i * batch_stride is matrix i, stored
// row-major with leading dimension ld; `trans` says whether the logical matrix is the stored
// one transposed.
struct BlasOperand {
  Tensor storage;  // keeps the memory alive (may be a contiguous copy)
  int64_t batch = 1, batch_stride = 0, ld = 0;
  bool trans = false;
};

bool batch_dims_mergeable(const Tensor& t) {
  for (int i = 0; i + 3 < t.dim(); ++i)
    if (t.stride(i) != t.stride(i + 1) * t.size(i + 1)) return false;
  return true;
}

// The logical matrix op(t) (t transposed when `transpose`), over t's leading batch dimensions.
BlasOperand blas_operand(const Tensor& t, bool transpose) {
  Tensor m = t;
  const int r = t.dim();
  const bool row_major = m.stride(-1) == 1 && m.stride(-2) >= m.size(-1);
  const bool col_major = m.stride(-2) == 1 && m.stride(-1) >= m.size(-2);
  if (!(row_major || col_major) || !batch_dims_mergeable(m)) m = t.contiguous();
  BlasOperand op;
  op.storage = m;
  if (m.stride(-1) == 1 && m.stride(-2) >= m.size(-1)) {
    op.ld = std::max<int64_t>(m.stride(-2), 1);
    op.trans = transpose;
  } else {
    op.ld = std::max<int64_t>(m.stride(-1), 1);
    op.trans = !transpose;
  }
  for (int i = 0; i + 2 < r; ++i) op.batch *= m.size(i);
  op.batch_stride = r > 2 ? m.stride(r - 3) : 0;
  return op;
}

// Matrix i of op at element offset `offset` + i · batch_stride (batch_stride 0: shared).
MatrixStack stack(const BlasOperand& op, int64_t offset = 0, bool shared = false) {
  return {op.storage, offset, op.ld, shared ? 0 : op.batch_stride};
}

// A contiguous stack of [rows, cols] matrices starting `offset` elements into t.
MatrixStack dense(const Tensor& t, int64_t rows, int64_t cols, int64_t offset = 0) {
  return {t, offset, cols, rows * cols};
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  require_defined(op, a);
  require_defined(op, b);
  detail::require_same_dtype(op, a, b);
  detail::require_rank_at_least(op, a, 2, "a");
  detail::require_rank_at_least(op, b, 2, "b");
  const int64_t M = trans_a ? a.size(-1) : a.size(-2);
  const int64_t K = trans_a ? a.size(-2) : a.size(-1);
  const int64_t Kb = trans_b ? b.size(-1) : b.size(-2);
  const int64_t N = trans_b ? b.size(-2) : b.size(-1);
  LATTE_CHECK(K == Kb) << "matmul: inner dimensions differ: " << a.describe()
                       << (trans_a ? "ᵀ" : "") << " · " << b.describe() << (trans_b ? "ᵀ" : "");
  const bool shared_b = b.dim() == 2;
  if (!shared_b) {
    LATTE_CHECK(b.dim() == a.dim())
        << "matmul: batched b " << b.describe() << " must have a's rank, a is " << a.describe();
    for (int i = 0; i + 2 < a.dim(); ++i)
      LATTE_CHECK(a.size(i) == b.size(i))
          << "matmul: batch dimensions of " << a.describe() << " and " << b.describe() << " differ";
  }
  const BlasOperand va = blas_operand(a, trans_a), vb = blas_operand(b, trans_b);
  std::vector<int64_t> out_shape(a.shape().begin(), a.shape().end() - 2);
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor c = Tensor::empty(Shape(out_shape), a.dtype(), a.device());
  const int64_t batch = va.batch;
  profiler::Scope timing(profiler::Category::kGemm);
  linear_kernels(a.device())
      .gemm(va.trans, vb.trans, batch, M, N, K, 1.0, stack(va), stack(vb, 0, shared_b), 0.0,
            dense(c, M, N));
  return record(
      op, c, {a, b},
      [va, vb, a_shape = a.shape(), b_shape = b.shape(), trans_a, trans_b, shared_b, M, N, K, batch,
       need_a = a.requires_grad(),
       need_b = b.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
        const Tensor dc = g.contiguous();
        const LinearKernels& blas = linear_kernels(dc.device());
        profiler::Scope timing(profiler::Category::kGemm);
        Tensor da, db;
        if (need_a) {
          da = Tensor::empty(a_shape, dc.dtype(), dc.device());
          if (!trans_a)  // dA = dC · op(B)ᵀ   [M, K]
            blas.gemm(false, !vb.trans, batch, M, K, N, 1.0, dense(dc, M, N),
                      stack(vb, 0, shared_b), 0.0, dense(da, M, K));
          else  // dA = op(B) · dCᵀ   [K, M]
            blas.gemm(vb.trans, true, batch, K, M, N, 1.0, stack(vb, 0, shared_b), dense(dc, M, N),
                      0.0, dense(da, K, M));
        }
        if (need_b) {
          db = Tensor::empty(b_shape, dc.dtype(), dc.device());
          // A shared b sums its gradient over the batch (beta = 1 after the first).
          const int64_t b_batch = shared_b ? 1 : batch;
          const int64_t loops = shared_b ? batch : 1;
          for (int64_t i = 0; i < loops; ++i) {
            const double beta = i == 0 ? 0.0 : 1.0;
            const MatrixStack A = stack(va, i * va.batch_stride);
            const MatrixStack C = dense(dc, M, N, i * M * N);
            if (!trans_b)  // dB = op(A)ᵀ · dC   [K, N]
              blas.gemm(!va.trans, false, b_batch, K, N, M, 1.0, A, C, beta, dense(db, K, N));
            else  // dB = dCᵀ · op(A)   [N, K]
              blas.gemm(true, va.trans, b_batch, N, K, M, 1.0, C, A, beta, dense(db, N, K));
          }
        }
        return {da, db};
      });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  require_defined(op, x);
  require_defined(op, weight);
  detail::require_weight_dtype(op, x, weight, "weight");
  LATTE_CHECK(weight.dim() == 2) << "linear: weight must be [out, in], got " << weight.describe();
  detail::require_rank_at_least(op, x, 1, "input");
  const int64_t in = weight.size(1), out = weight.size(0);
  LATTE_CHECK(x.size(-1) == in) << "linear: input " << x.describe() << " does not match weight "
                                << weight.describe() << " (expects last dimension " << in << ")";
  if (bias.defined()) {
    detail::require_weight_dtype(op, x, bias, "bias");
    LATTE_CHECK(bias.dim() == 1 && bias.size(0) == out)
        << "linear: bias " << bias.describe() << " does not match weight " << weight.describe();
  }
  const int64_t rows = x.numel() / in;
  // Master weights enter the products rounded to x's dtype; their gradients leave in their own.
  const Tensor x2 = x.contiguous(), w = weight.detached_cast(x.dtype()).contiguous();
  const Tensor b = bias.defined() ? bias.detached_cast(x.dtype()) : Tensor();
  std::vector<int64_t> out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(out);
  Tensor y = Tensor::empty(Shape(out_shape), x.dtype(), x.device());
  {
    profiler::Scope timing(profiler::Category::kGemm);
    linear_kernels(x.device()).linear_forward(x2, w, b.defined() ? b.contiguous() : Tensor(), y);
  }
  std::vector<Tensor> inputs = {x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return record(op, y, inputs,
                [sx = saved(x2), sw = saved(w), x_shape = x.shape(), has_bias = bias.defined(),
                 w_dtype = weight.dtype(), b_dtype = bias.defined() ? bias.dtype() : x.dtype(),
                 rows, in, out, need_x = x.requires_grad(), need_w = weight.requires_grad(),
                 need_b = bias.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor dy = g.contiguous();
                  const LinearKernels& blas = linear_kernels(dy.device());
                  profiler::Scope timing(profiler::Category::kGemm);
                  Tensor dx, dw, db;
                  if (need_x) {  // dx = dy · W
                    dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
                    blas.gemm(false, false, 1, rows, in, out, 1.0, dense(dy, rows, out),
                              dense(sw, out, in), 0.0, dense(dx, rows, in));
                  }
                  if (need_w) {  // dW = dyᵀ · x, stored from the GEMM's accumulators in W's dtype
                    dw = Tensor::empty(Shape{out, in}, w_dtype, dy.device());
                    blas.gemm(true, false, 1, out, in, rows, 1.0, dense(dy, rows, out),
                              dense(sx, rows, in), 0.0, dense(dw, out, in));
                  }
                  if (need_b) {  // db = column sums of dy
                    db = Tensor::empty(Shape{out}, dy.dtype(), dy.device());
                    elementwise_kernels(dy.device()).sum_to(dy, Shape{rows, out}, db, Shape{0, 1});
                    if (b_dtype != db.dtype()) db = db.to(b_dtype);
                  }
                  std::vector<Tensor> grads = {dx, dw};
                  if (has_bias) grads.push_back(db);
                  return grads;
                });
}

}  // namespace latte::ops
