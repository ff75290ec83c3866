// The CPU table of the neural-network ops, over kernels/cpu (embedding, norm_softmax,
// cross_entropy, random). Ids are validated on the host before any kernel reads them.
#include <algorithm>
#include <optional>

#include "engine/backend/nn_kernels.h"
#include "engine/dispatch.h"
#include "kernels/cpu/cross_entropy.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/norm_softmax.h"
#include "kernels/cpu/random.h"

namespace latte {

namespace {

namespace k = kernels::cpu;

// Checks that every id is in [0, vocab) (or equals `ignored`) and names the first offender.
void check_ids(const char* op, const Tensor& ids, int64_t vocab,
               std::optional<int64_t> ignored = std::nullopt) {
  const int32_t* p = ids.data<int32_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    LATTE_CHECK((p[i] >= 0 && p[i] < vocab) || (ignored && p[i] == *ignored))
        << op << ": id " << p[i] << " at flat position " << i << " is outside [0, " << vocab << ")";
}

class CpuNnKernels final : public NnKernels {
 public:
  void embedding_forward(const Tensor& ids, const Tensor& weight,
                         const Tensor& out) const override {
    const int64_t dim = weight.size(1);
    check_ids("embedding", ids, weight.size(0));
    visit_float_pair(out.dtype(), weight.dtype(), "embedding", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::embedding_forward(ids.data<int32_t>(), weight.data<W>(), out.data<T>(), ids.numel(), dim);
    });
  }

  void embedding_backward(const Tensor& ids, const Tensor& dout,
                          const Tensor& dweight) const override {
    visit_float_pair(dout.dtype(), dweight.dtype(), "embedding backward", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::embedding_backward(ids.data<int32_t>(), dout.data<T>(), dweight.data<W>(), ids.numel(),
                            dweight.size(0), dweight.size(1));
    });
  }

  Tensor rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& y,
                          double eps) const override {
    const int64_t cols = x.size(-1), rows = rows_of(x);
    const int64_t stride = rms_norm_row_stride("rms_norm", x);
    Tensor rstd = Tensor::empty(Shape{rows}, x.dtype());
    visit_float_pair(x.dtype(), weight.dtype(), "rms_norm", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::rms_norm_forward(x.data<T>(), stride, weight.data<W>(), y.data<T>(), rstd.data<T>(), rows,
                          cols, eps);
    });
    return rstd;
  }

  void rms_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& rstd,
                         const Tensor& dy, const Tensor& dx, const Tensor& dweight) const override {
    const int64_t cols = x.size(-1), rows = rows_of(x);
    const int64_t stride = rms_norm_row_stride("rms_norm backward", x);
    visit_float_pair(x.dtype(), weight.dtype(), "rms_norm backward", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::rms_norm_backward(x.data<T>(), stride, weight.data<W>(), rstd.data<T>(), dy.data<T>(),
                           dx.data<T>(), dweight.data<W>(), rows, cols);
    });
  }

  void softmax_forward(const Tensor& x, const Tensor& y) const override {
    const int64_t cols = x.size(-1);
    visit_float(x.dtype(), "softmax", [&](auto tag) {
      using T = decltype(tag);
      k::softmax_forward(x.data<T>(), y.data<T>(), rows_of(x), cols);
    });
  }

  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) const override {
    const int64_t cols = y.size(-1);
    visit_float(y.dtype(), "softmax backward", [&](auto tag) {
      using T = decltype(tag);
      k::softmax_backward(y.data<T>(), dy.data<T>(), dx.data<T>(), rows_of(y), cols);
    });
  }

  CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                            int64_t ignore_index) const override {
    const int64_t vocab = logits.size(-1), rows = rows_of(logits);
    check_ids("cross_entropy", targets, vocab, ignore_index);
    Tensor lse = Tensor::empty(Shape{rows}, logits.dtype());
    int64_t counted = 0;
    const double total = visit_float(logits.dtype(), "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      return k::cross_entropy_forward(logits.data<T>(), targets.data<int32_t>(), lse.data<T>(),
                                      rows, vocab, ignore_index, &counted);
    });
    LATTE_CHECK(counted > 0) << "cross_entropy: every target equals ignore_index " << ignore_index;
    return {Tensor::scalar(total / static_cast<double>(counted), logits.dtype()), lse,
            Tensor::scalar(static_cast<double>(counted), DType::I64)};
  }

  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              const Tensor& counted, const Tensor& dloss, const Tensor& dlogits,
                              int64_t ignore_index) const override {
    const int64_t vocab = logits.size(-1), rows = rows_of(logits);
    const double scale = dloss.item() / counted.item();
    visit_float(logits.dtype(), "cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      k::cross_entropy_backward(logits.data<T>(), targets.data<int32_t>(), lse.data<T>(),
                                static_cast<T>(scale), dlogits.data<T>(), rows, vocab,
                                ignore_index);
    });
  }

  void dropout_forward(const Tensor& x, const Tensor& y, const Tensor& mask, double p,
                       uint64_t seed, uint64_t offset) const override {
    visit_float(x.dtype(), "dropout", [&](auto tag) {
      using T = decltype(tag);
      k::dropout_forward(x.data<T>(), y.data<T>(), mask.data<T>(), x.numel(), p, seed, offset);
    });
  }
};

}  // namespace

const NnKernels& cpu_nn_kernels() {
  static const CpuNnKernels table;
  return table;
}

}  // namespace latte
