// matmul and linear (engine/ops.h) over BLAS GEMMs. Operands are passed to BLAS as they lie in
// memory: a transposed view becomes a transpose flag, not a copy. linear folds the leading
// dimensions into the GEMM's M and fuses the bias by starting C from it (beta = 1).
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"

namespace latte::ops {

using detail::require_cpu;
using detail::saved;
namespace k = kernels::cpu;

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

template <typename T>
const T* ptr(const BlasOperand& op) {
  return op.storage.data<T>();
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  const char* op = "matmul";
  require_cpu(op, a);
  require_cpu(op, b);
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
  Tensor c = Tensor::empty(Shape(out_shape), a.dtype());
  const int64_t batch = va.batch;
  profiler::Scope timing(profiler::Category::kGemm);
  visit_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    k::gemm_batched<T>(va.trans, vb.trans, batch, M, N, K, T(1), ptr<T>(va), va.ld, va.batch_stride,
                       ptr<T>(vb), vb.ld, shared_b ? 0 : vb.batch_stride, T(0), c.data<T>(), N,
                       M * N);
  });
  return record(op, c, {a, b},
                [va, vb, a_shape = a.shape(), b_shape = b.shape(), trans_a, trans_b, shared_b, M, N,
                 K, batch, need_a = a.requires_grad(),
                 need_b = b.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor dc = g.contiguous();
                  profiler::Scope timing(profiler::Category::kGemm);
                  Tensor da, db;
                  visit_float(dc.dtype(), "matmul backward", [&](auto tag) {
                    using T = decltype(tag);
                    if (need_a) {
                      da = Tensor::empty(a_shape, dc.dtype());
                      if (!trans_a)  // dA = dC · op(B)ᵀ   [M, K]
                        k::gemm_batched<T>(false, !vb.trans, batch, M, K, N, T(1), dc.data<T>(), N,
                                           M * N, ptr<T>(vb), vb.ld, shared_b ? 0 : vb.batch_stride,
                                           T(0), da.data<T>(), K, M * K);
                      else  // dA = op(B) · dCᵀ   [K, M]
                        k::gemm_batched<T>(vb.trans, true, batch, K, M, N, T(1), ptr<T>(vb), vb.ld,
                                           shared_b ? 0 : vb.batch_stride, dc.data<T>(), N, M * N,
                                           T(0), da.data<T>(), M, M * K);
                    }
                    if (need_b) {
                      db = Tensor::empty(b_shape, dc.dtype());
                      // A shared b sums its gradient over the batch (beta = 1 after the first).
                      const int64_t b_batch = shared_b ? 1 : batch;
                      const int64_t loops = shared_b ? batch : 1;
                      for (int64_t i = 0; i < loops; ++i) {
                        const T beta = i == 0 ? T(0) : T(1);
                        const T* A = ptr<T>(va) + i * va.batch_stride;
                        const T* C = dc.data<T>() + i * M * N;
                        if (!trans_b)  // dB = op(A)ᵀ · dC   [K, N]
                          k::gemm_batched<T>(!va.trans, false, b_batch, K, N, M, T(1), A, va.ld,
                                             va.batch_stride, C, N, M * N, beta, db.data<T>(), N,
                                             K * N);
                        else  // dB = dCᵀ · op(A)   [N, K]
                          k::gemm_batched<T>(true, va.trans, b_batch, N, K, M, T(1), C, N, M * N, A,
                                             va.ld, va.batch_stride, beta, db.data<T>(), K, K * N);
                      }
                    }
                  });
                  return {da, db};
                });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const char* op = "linear";
  require_cpu(op, x);
  require_cpu(op, weight);
  detail::require_same_dtype(op, x, weight);
  LATTE_CHECK(weight.dim() == 2) << "linear: weight must be [out, in], got " << weight.describe();
  detail::require_rank_at_least(op, x, 1, "input");
  const int64_t in = weight.size(1), out = weight.size(0);
  LATTE_CHECK(x.size(-1) == in) << "linear: input " << x.describe() << " does not match weight "
                                << weight.describe() << " (expects last dimension " << in << ")";
  if (bias.defined()) {
    detail::require_same_dtype(op, x, bias);
    LATTE_CHECK(bias.dim() == 1 && bias.size(0) == out)
        << "linear: bias " << bias.describe() << " does not match weight " << weight.describe();
  }
  const int64_t rows = x.numel() / in;
  const Tensor x2 = x.contiguous(), w = weight.contiguous();
  std::vector<int64_t> out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(out);
  Tensor y = Tensor::empty(Shape(out_shape), x.dtype());
  profiler::Scope timing(profiler::Category::kGemm);
  visit_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T beta = T(0);
    if (bias.defined()) {
      const Tensor bc = bias.contiguous();
      T* py = y.data<T>();
      for (int64_t r = 0; r < rows; ++r) std::copy_n(bc.data<T>(), out, py + r * out);
      beta = T(1);
    }
    k::gemm<T>(false, true, rows, out, in, T(1), x2.data<T>(), in, w.data<T>(), in, beta,
               y.data<T>(), out);
  });
  std::vector<Tensor> inputs = {x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return record(op, y, inputs,
                [sx = saved(x2), sw = saved(w), x_shape = x.shape(), has_bias = bias.defined(),
                 rows, in, out, need_x = x.requires_grad(), need_w = weight.requires_grad(),
                 need_b = bias.requires_grad()](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor dy = g.contiguous();
                  profiler::Scope timing(profiler::Category::kGemm);
                  Tensor dx, dw, db;
                  visit_float(dy.dtype(), "linear backward", [&](auto tag) {
                    using T = decltype(tag);
                    if (need_x) {  // dx = dy · W
                      dx = Tensor::empty(x_shape, dy.dtype());
                      k::gemm<T>(false, false, rows, in, out, T(1), dy.data<T>(), out, sw.data<T>(),
                                 in, T(0), dx.data<T>(), in);
                    }
                    if (need_w) {  // dW = dyᵀ · x
                      dw = Tensor::empty(Shape{out, in}, dy.dtype());
                      k::gemm<T>(true, false, out, in, rows, T(1), dy.data<T>(), out, sx.data<T>(),
                                 in, T(0), dw.data<T>(), in);
                    }
                    if (need_b) {  // db = column sums of dy
                      db = Tensor::empty(Shape{out}, dy.dtype());
                      const int64_t shape[2] = {rows, out}, strides[2] = {0, 1};
                      k::sum_to<T>(dy.data<T>(), shape, 2, db.data<T>(), strides, out);
                    }
                  });
                  std::vector<Tensor> grads = {dx, dw};
                  if (has_bias) grads.push_back(db);
                  return grads;
                });
}

}  // namespace latte::ops
