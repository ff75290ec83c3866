// The CUDA table of the neural-network ops, over kernels/cuda (embedding, norm_softmax,
// cross_entropy, cross_entropy_mean, dropout). f32 and bf16 tensors; RMSNorm's 1/rms and
// cross-entropy's logsumexp are kept in fp32, and the loss is an fp32 scalar on the device. Ids
// are checked on the device (engine/cuda/cuda_id_check.h), so no call waits for the GPU.
#include <algorithm>
#include <optional>

#include "engine/backend/nn_kernels.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_id_check.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/dispatch.h"
#include "kernels/cuda/cross_entropy.cuh"
#include "kernels/cuda/cross_entropy_mean.cuh"
#include "kernels/cuda/dropout.cuh"
#include "kernels/cuda/embedding.cuh"
#include "kernels/cuda/norm_softmax.cuh"

namespace latte::cuda {

namespace {

namespace k = kernels::cuda;

class CudaNnKernels final : public NnKernels {
 public:
  void embedding_forward(const Tensor& ids, const Tensor& weight,
                         const Tensor& out) const override {
    const int64_t vocab = weight.size(0), dim = weight.size(1);
    LATTE_CHECK(vocab > 0 || ids.numel() == 0)
        << "embedding: " << ids.describe() << " index the empty table " << weight.describe();
    const Tensor safe = ids_.sanitize("embedding", ids, vocab, std::nullopt, 0);
    visit_gpu_float_pair(out.dtype(), weight.dtype(), "embedding", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::embedding_forward(safe.data<int32_t>(), weight.data<W>(), out.data<T>(), ids.numel(), dim,
                           stream());
    });
  }

  // Ids outside [0, vocab) contribute nothing here (the forward has reported them). The sort of
  // the tokens by id runs in scratch memory from the caching allocator, reused in stream order.
  void embedding_backward(const Tensor& ids, const Tensor& dout,
                          const Tensor& dweight) const override {
    const int64_t n = ids.numel(), vocab = dweight.size(0);
    const int64_t bytes = k::embedding_backward_workspace_bytes(n, vocab);
    const Tensor workspace = Tensor::empty(Shape{(bytes + 7) / 8}, DType::I64, Device::CUDA);
    visit_gpu_float_pair(dout.dtype(), dweight.dtype(), "embedding backward", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::embedding_backward(ids.data<int32_t>(), dout.data<T>(), dweight.data<W>(), n, vocab,
                            dweight.size(1), workspace.raw_data(), stream());
    });
  }

  Tensor rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& y,
                          double eps) const override {
    const int64_t cols = x.size(-1), rows = rows_of(x);
    const int64_t stride = rms_norm_row_stride("rms_norm", x);
    Tensor rstd = Tensor::empty(Shape{rows}, DType::F32, Device::CUDA);
    visit_gpu_float_pair(x.dtype(), weight.dtype(), "rms_norm", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::rms_norm_forward(x.data<T>(), stride, weight.data<W>(), y.data<T>(), rstd.data<float>(),
                          rows, cols, eps, stream());
    });
    return rstd;
  }

  // dweight's per-chunk partial sums live in scratch memory from the caching allocator.
  void rms_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& rstd,
                         const Tensor& dy, const Tensor& dx, const Tensor& dweight) const override {
    const int64_t cols = x.size(-1), rows = rows_of(x);
    const int64_t stride = rms_norm_row_stride("rms_norm backward", x);
    const int64_t bytes = k::rms_norm_backward_workspace_bytes(rows, cols);
    const Tensor workspace = Tensor::empty(Shape{(bytes + 3) / 4}, DType::F32, Device::CUDA);
    visit_gpu_float_pair(x.dtype(), weight.dtype(), "rms_norm backward", [&](auto t, auto w) {
      using T = decltype(t);
      using W = decltype(w);
      k::rms_norm_backward(x.data<T>(), stride, weight.data<W>(), rstd.data<float>(), dy.data<T>(),
                           dx.data<T>(), dweight.data<W>(), rows, cols, workspace.raw_data(),
                           stream());
    });
  }

  void softmax_forward(const Tensor& x, const Tensor& y) const override {
    const int64_t cols = x.size(-1);
    visit_gpu_float(x.dtype(), "softmax", [&](auto tag) {
      using T = decltype(tag);
      k::softmax_forward(x.data<T>(), y.data<T>(), rows_of(x), cols, stream());
    });
  }

  void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) const override {
    const int64_t cols = y.size(-1);
    visit_gpu_float(y.dtype(), "softmax backward", [&](auto tag) {
      using T = decltype(tag);
      k::softmax_backward(y.data<T>(), dy.data<T>(), dx.data<T>(), rows_of(y), cols, stream());
    });
  }

  CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                            int64_t ignore_index) const override {
    const int64_t vocab = logits.size(-1), rows = rows_of(logits);
    // A bad target reads as 0 (a valid id whenever there are rows) until it is reported.
    const Tensor safe = ids_.sanitize("cross_entropy", targets, vocab, ignore_index, 0);
    Tensor lse = Tensor::empty(Shape{rows}, DType::F32, Device::CUDA);
    Tensor counted = Tensor::empty(Shape{}, DType::I64, Device::CUDA);
    const Tensor loss_sum = Tensor::empty(Shape{}, DType::F64, Device::CUDA);
    visit_gpu_float(logits.dtype(), "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      k::cross_entropy_forward(logits.data<T>(), safe.data<int32_t>(), lse.data<float>(), rows,
                               vocab, ignore_index, loss_sum.data<double>(),
                               counted.data<int64_t>(), stream());
    });
    Tensor loss = Tensor::empty(Shape{}, DType::F32, Device::CUDA);
    k::cross_entropy_mean_loss(loss_sum.data<double>(), counted.data<int64_t>(), loss.data<float>(),
                               stream());
    return {loss, lse, counted};
  }

  void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                              const Tensor& counted, const Tensor& dloss, const Tensor& dlogits,
                              int64_t ignore_index) const override {
    const int64_t vocab = logits.size(-1), rows = rows_of(logits);
    const Tensor g = dloss.dtype() == DType::F32 ? dloss : dloss.to(DType::F32);
    const Tensor scale = Tensor::empty(Shape{}, DType::F32, Device::CUDA);
    k::cross_entropy_grad_scale(g.data<float>(), counted.data<int64_t>(), scale.data<float>(),
                                stream());
    visit_gpu_float(logits.dtype(), "cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      k::cross_entropy_backward(logits.data<T>(), targets.data<int32_t>(), lse.data<float>(),
                                scale.data<float>(), dlogits.data<T>(), rows, vocab, ignore_index,
                                stream());
    });
  }

  void dropout_forward(const Tensor& x, const Tensor& y, const Tensor& mask, double p,
                       uint64_t seed, uint64_t offset) const override {
    visit_gpu_float(x.dtype(), "dropout", [&](auto tag) {
      using T = decltype(tag);
      k::dropout_forward(x.data<T>(), y.data<T>(), mask.data<T>(), x.numel(), p, seed, offset,
                         stream());
    });
  }

 private:
  // Checking ids changes only the check's own bookkeeping, not what the table computes.
  mutable IdCheck ids_;
};

}  // namespace

const NnKernels& nn_kernels() {
  static const CudaNnKernels table;
  return table;
}

}  // namespace latte::cuda
