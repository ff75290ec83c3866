// Neural-network ops (engine/ops.h): embedding, RMSNorm, softmax, fused cross-entropy, dropout.
#include <optional>

#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/ops/op_support.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/norm_softmax.h"
#include "kernels/cpu/random.h"

namespace latte::ops {

using detail::require_cpu;
using detail::saved;
namespace k = kernels::cpu;

namespace {

// Checks that every id is in [0, vocab) (or equals `ignored`) and names the first offender.
void check_ids(const char* op, const Tensor& ids, int64_t vocab,
               std::optional<int64_t> ignored = std::nullopt) {
  const int32_t* p = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    LATTE_CHECK((p[i] >= 0 && p[i] < vocab) || (ignored && p[i] == *ignored))
        << op << ": id " << p[i] << " at flat position " << i << " is outside [0, " << vocab << ")";
}

}  // namespace

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  require_cpu("embedding", ids);
  require_cpu("embedding", weight);
  LATTE_CHECK(ids.dtype() == DType::I32) << "embedding: ids must be i32, got " << ids.describe();
  LATTE_CHECK(weight.dim() == 2) << "embedding: weight must be [vocab, dim], got "
                                 << weight.describe();
  const Tensor idc = ids.contiguous(), w = weight.contiguous();
  const int64_t vocab = w.size(0), dim = w.size(1), n = idc.numel();
  check_ids("embedding", idc, vocab);
  std::vector<int64_t> shape(ids.shape().begin(), ids.shape().end());
  shape.push_back(dim);
  Tensor out = Tensor::empty(Shape(shape), w.dtype());
  visit_float(w.dtype(), "embedding", [&](auto tag) {
    using T = decltype(tag);
    k::embedding_forward(idc.data<int32_t>(), w.data<T>(), out.data<T>(), n, dim);
  });
  return record("embedding", out, {ids, weight},
                [sid = saved(idc), vocab, dim, n](const Tensor& g) -> std::vector<Tensor> {
                  const Tensor gc = g.contiguous();
                  Tensor dw = Tensor::empty(Shape{vocab, dim}, gc.dtype());
                  visit_float(gc.dtype(), "embedding backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::embedding_backward(sid.data<int32_t>(), gc.data<T>(), dw.data<T>(), n, vocab,
                                          dim);
                  });
                  return {Tensor(), dw};
                });
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  require_cpu("rms_norm", x);
  require_cpu("rms_norm", weight);
  detail::require_same_dtype("rms_norm", x, weight);
  LATTE_CHECK(weight.dim() == 1 && x.dim() >= 1 && weight.size(0) == x.size(-1))
      << "rms_norm: weight " << weight.describe() << " does not match the last dimension of "
      << x.describe();
  const Tensor xc = x.contiguous(), w = weight.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor rstd = Tensor::empty(Shape{rows}, x.dtype());
  visit_float(x.dtype(), "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    k::rms_norm_forward(xc.data<T>(), w.data<T>(), y.data<T>(), rstd.data<T>(), rows, cols, eps);
  });
  return record("rms_norm", y, {x, weight},
                [sx = saved(xc), sw = saved(w), rstd, rows, cols](const Tensor& g) {
                  const Tensor dy = g.contiguous();
                  Tensor dx = Tensor::empty(sx.shape(), sx.dtype());
                  Tensor dw = Tensor::empty(sw.shape(), sw.dtype());
                  visit_float(sx.dtype(), "rms_norm backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::rms_norm_backward(sx.data<T>(), sw.data<T>(), rstd.data<T>(), dy.data<T>(),
                                         dx.data<T>(), dw.data<T>(), rows, cols);
                  });
                  return std::vector<Tensor>{dx, dw};
                });
}

Tensor softmax(const Tensor& x) {
  require_cpu("softmax", x);
  detail::require_rank_at_least("softmax", x, 1, "input");
  const Tensor xc = x.contiguous();
  const int64_t cols = x.size(-1), rows = x.numel() / std::max<int64_t>(cols, 1);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  visit_float(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    k::softmax_forward(xc.data<T>(), y.data<T>(), rows, cols);
  });
  return record("softmax", y, {x}, [sy = saved(y), rows, cols](const Tensor& g) {
    const Tensor dy = g.contiguous();
    Tensor dx = Tensor::empty(sy.shape(), sy.dtype());
    visit_float(sy.dtype(), "softmax backward", [&](auto tag) {
      using T = decltype(tag);
      k::softmax_backward(sy.data<T>(), dy.data<T>(), dx.data<T>(), rows, cols);
    });
    return std::vector<Tensor>{dx};
  });
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  require_cpu("cross_entropy", logits);
  require_cpu("cross_entropy", targets);
  LATTE_CHECK(targets.dtype() == DType::I32)
      << "cross_entropy: targets must be i32, got " << targets.describe();
  detail::require_rank_at_least("cross_entropy", logits, 1, "logits");
  const int64_t vocab = logits.size(-1), rows = logits.numel() / std::max<int64_t>(vocab, 1);
  LATTE_CHECK(targets.numel() == rows && targets.dim() == logits.dim() - 1)
      << "cross_entropy: targets " << targets.describe() << " do not match logits "
      << logits.describe();
  const Tensor lc = logits.contiguous(), tc = targets.contiguous();
  check_ids("cross_entropy", tc, vocab, ignore_index);
  Tensor lse = Tensor::empty(Shape{rows}, logits.dtype());
  int64_t counted = 0;
  const double total = visit_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    return k::cross_entropy_forward(lc.data<T>(), tc.data<int32_t>(), lse.data<T>(), rows, vocab,
                                    ignore_index, &counted);
  });
  LATTE_CHECK(counted > 0) << "cross_entropy: every target equals ignore_index " << ignore_index;
  Tensor loss = Tensor::scalar(total / static_cast<double>(counted), logits.dtype());
  return record("cross_entropy", loss, {logits, targets},
                [sl = saved(lc), st = saved(tc), lse, rows, vocab, ignore_index,
                 counted](const Tensor& g) -> std::vector<Tensor> {
                  Tensor dlogits = Tensor::empty(sl.shape(), sl.dtype());
                  const double scale = g.item() / static_cast<double>(counted);
                  visit_float(sl.dtype(), "cross_entropy backward", [&](auto tag) {
                    using T = decltype(tag);
                    k::cross_entropy_backward(sl.data<T>(), st.data<int32_t>(), lse.data<T>(),
                                              static_cast<T>(scale), dlogits.data<T>(), rows, vocab,
                                              ignore_index);
                  });
                  return {dlogits, Tensor()};
                });
}

Tensor dropout(const Tensor& x, double p, Generator& gen) {
  LATTE_CHECK(p >= 0 && p < 1) << "dropout: probability must be in [0, 1), got " << p;
  if (p == 0) return x;
  require_cpu("dropout", x);
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  const uint64_t offset = gen.take(static_cast<uint64_t>(x.numel()));
  visit_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    k::dropout_forward(xc.data<T>(), y.data<T>(), mask.data<T>(), x.numel(), p, gen.seed(), offset);
  });
  return record("dropout", y, {x},
                [mask](const Tensor& g) -> std::vector<Tensor> { return {mul(g, mask)}; });
}

}  // namespace latte::ops
