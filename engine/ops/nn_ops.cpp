// Neural-network ops (engine/ops.h): embedding, RMSNorm, softmax, fused cross-entropy, dropout;
// the operands' device runs the kernels (engine/backend/nn_kernels.h).
#include <algorithm>

#include "engine/backend/nn_kernels.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "engine/profiler.h"

namespace latte::ops {

using detail::require_defined;
using detail::saved;

namespace {

const NnKernels& kernels(const Tensor& t) {
  return nn_kernels(t.device());
}

void require_same_device(const char* op, const Tensor& a, const Tensor& b) {
  LATTE_CHECK(a.device() == b.device())
      << op << ": " << a.describe() << " and " << b.describe() << " live on different devices";
}

}  // namespace

Tensor embedding(const Tensor& ids, const Tensor& weight, DType dtype) {
  profiler::Scope timing(profiler::Category::kEmbedding);
  require_defined("embedding", ids);
  require_defined("embedding", weight);
  require_same_device("embedding", ids, weight);
  LATTE_CHECK(ids.dtype() == DType::I32) << "embedding: ids must be i32, got " << ids.describe();
  LATTE_CHECK(weight.dim() == 2) << "embedding: weight must be [vocab, dim], got "
                                 << weight.describe();
  LATTE_CHECK(weight.dtype() == dtype || weight.dtype() == master_dtype(dtype))
      << "embedding: weight " << weight.describe() << " must have the rows' dtype "
      << dtype_name(dtype) << " or its master dtype " << dtype_name(master_dtype(dtype));
  const Tensor idc = ids.contiguous(), w = weight.contiguous();
  const int64_t vocab = w.size(0), dim = w.size(1);
  std::vector<int64_t> shape(ids.shape().begin(), ids.shape().end());
  shape.push_back(dim);
  Tensor out = Tensor::empty(Shape(shape), dtype, w.device());
  kernels(w).embedding_forward(idc, w, out);
  return record(
      "embedding", out, {ids, weight},
      [sid = saved(idc), vocab, dim, w_dtype = w.dtype()](const Tensor& g) -> std::vector<Tensor> {
        profiler::Scope timing(profiler::Category::kEmbedding);
        const Tensor gc = g.contiguous();
        Tensor dw = Tensor::empty(Shape{vocab, dim}, w_dtype, gc.device());
        kernels(gc).embedding_backward(sid, gc, dw);
        return {Tensor(), dw};
      });
}

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  require_defined("embedding", weight);
  return embedding(ids, weight, weight.dtype());
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  profiler::Scope timing(profiler::Category::kNorm);
  require_defined("rms_norm", x);
  require_defined("rms_norm", weight);
  detail::require_weight_dtype("rms_norm", x, weight, "weight");
  LATTE_CHECK(weight.dim() == 1 && x.dim() >= 1 && weight.size(0) == x.size(-1))
      << "rms_norm: weight " << weight.describe() << " does not match the last dimension of "
      << x.describe();
  // Rows that are uniformly strided (a narrow of wider rows, as MLA's c_kv) are read in place.
  const Tensor xc = uniform_row_stride(x) ? x : x.contiguous(), w = weight.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  const Tensor rstd = kernels(x).rms_norm_forward(xc, w, y, eps);
  return record("rms_norm", y, {x, weight},
                [sx = saved(xc), sw = saved(w), rstd](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kNorm);
                  const Tensor dy = g.contiguous();
                  Tensor dx = Tensor::empty(sx.shape(), sx.dtype(), sx.device());
                  Tensor dw = Tensor::empty(sw.shape(), sw.dtype(), sw.device());
                  kernels(sx).rms_norm_backward(sx, sw, rstd, dy, dx, dw);
                  return {dx, dw};
                });
}

Tensor softmax(const Tensor& x) {
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined("softmax", x);
  detail::require_rank_at_least("softmax", x, 1, "input");
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels(x).softmax_forward(xc, y);
  return record("softmax", y, {x}, [sy = saved(y)](const Tensor& g) -> std::vector<Tensor> {
    profiler::Scope timing(profiler::Category::kElementwise);
    const Tensor dy = g.contiguous();
    Tensor dx = Tensor::empty(sy.shape(), sy.dtype(), sy.device());
    kernels(sy).softmax_backward(sy, dy, dx);
    return {dx};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  profiler::Scope timing(profiler::Category::kLoss);
  require_defined("cross_entropy", logits);
  require_defined("cross_entropy", targets);
  require_same_device("cross_entropy", logits, targets);
  LATTE_CHECK(targets.dtype() == DType::I32)
      << "cross_entropy: targets must be i32, got " << targets.describe();
  detail::require_rank_at_least("cross_entropy", logits, 1, "logits");
  const int64_t vocab = logits.size(-1), rows = logits.numel() / std::max<int64_t>(vocab, 1);
  LATTE_CHECK(targets.numel() == rows && targets.dim() == logits.dim() - 1)
      << "cross_entropy: targets " << targets.describe() << " do not match logits "
      << logits.describe();
  const Tensor lc = logits.contiguous(), tc = targets.contiguous();
  const CrossEntropyForward f = kernels(lc).cross_entropy_forward(lc, tc, ignore_index);
  return record("cross_entropy", f.loss, {logits, targets},
                [sl = saved(lc), st = saved(tc), lse = f.lse, counted = f.counted,
                 ignore_index](const Tensor& g) -> std::vector<Tensor> {
                  profiler::Scope timing(profiler::Category::kLoss);
                  Tensor dlogits = Tensor::empty(sl.shape(), sl.dtype(), sl.device());
                  kernels(sl).cross_entropy_backward(sl, st, lse, counted, g, dlogits,
                                                     ignore_index);
                  return {dlogits, Tensor()};
                });
}

Tensor dropout(const Tensor& x, double p, Generator& gen) {
  LATTE_CHECK(p >= 0 && p < 1) << "dropout: probability must be in [0, 1), got " << p;
  if (p == 0) return x;
  profiler::Scope timing(profiler::Category::kElementwise);
  require_defined("dropout", x);
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mask = Tensor::empty(x.shape(), x.dtype(), x.device());
  const uint64_t offset = gen.take(static_cast<uint64_t>(x.numel()));
  kernels(x).dropout_forward(xc, y, mask, p, gen.seed(), offset);
  return record("dropout", y, {x},
                [mask](const Tensor& g) -> std::vector<Tensor> { return {mul(g, mask)}; });
}

}  // namespace latte::ops
