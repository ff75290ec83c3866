// The CUDA table of the attention ops: naive attention over kernels/cuda/naive_attention.cuh
// (cuBLAS GEMMs and the masked softmax, the materializing baseline), flash attention over
// kernels/cuda/flash_attention.cuh (fp32 logsumexp and backward workspace) and rope over
// kernels/cuda/rope.cuh (fp32 tables). Operands are F32 or BF16.
#include "engine/backend/attention_kernels.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/dispatch.h"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/naive_attention.cuh"
#include "kernels/cuda/rope.cuh"

namespace latte::cuda {

namespace {

namespace kc = kernels::cuda;

// The flash kernels keep head vectors in shared memory: qk_dim and v_dim up to
// kFlashMaxHeadDim.
void require_flash_head_dims(const AttentionProblem& p) {
  LATTE_CHECK(p.qk_dim <= kc::kFlashMaxHeadDim && p.v_dim <= kc::kFlashMaxHeadDim)
      << "flash_attention: the CUDA kernels take head dims up to " << kc::kFlashMaxHeadDim
      << ", got qk_dim " << p.qk_dim << " and v_dim " << p.v_dim
      << " (the naive implementation has no limit)";
}

// A rope table as the fp32 tensor the kernels read.
Tensor fp32_table(const Tensor& table) {
  return table.dtype() == DType::F32 ? table : table.to(DType::F32);
}

class CudaAttentionKernels final : public AttentionKernels {
 public:
  Tensor naive_attention_forward(const AttentionProblem& p, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& o) const override {
    Tensor probs =
        Tensor::empty(Shape{p.batch, p.q_heads, p.q_len, p.kv_len}, q.dtype(), Device::CUDA);
    visit_gpu_float(q.dtype(), "naive_attention", [&](auto tag) {
      using T = decltype(tag);
      kc::naive_attention_forward<T>(blas(), p, q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(),
                                     probs.data<T>(), stream());
    });
    return probs;
  }

  void naive_attention_backward(const AttentionProblem& p, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& probs, const Tensor& d_o,
                                const Tensor& dq, const Tensor& dk,
                                const Tensor& dv) const override {
    // Freed when this returns; the caching allocator hands it out again only to work queued
    // after the kernels on the same stream.
    const Tensor workspace =
        Tensor::empty(Shape{kc::naive_attention_backward_workspace(p)}, q.dtype(), Device::CUDA);
    visit_gpu_float(q.dtype(), "naive_attention backward", [&](auto tag) {
      using T = decltype(tag);
      kc::naive_attention_backward<T>(blas(), p, q.data<T>(), k.data<T>(), v.data<T>(),
                                      probs.data<T>(), d_o.data<T>(), dq.data<T>(), dk.data<T>(),
                                      dv.data<T>(), workspace.data<T>(), stream());
    });
  }

  Tensor flash_attention_forward(const AttentionProblem& p, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& o) const override {
    require_flash_head_dims(p);
    Tensor lse = Tensor::empty(Shape{p.batch, p.q_heads, p.q_len}, DType::F32, Device::CUDA);
    visit_gpu_float(q.dtype(), "flash_attention", [&](auto tag) {
      using T = decltype(tag);
      kc::flash_attention_forward<T>(p, q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(),
                                     lse.data<float>(), stream());
    });
    return lse;
  }

  void flash_attention_backward(const AttentionProblem& p, const Tensor& q, const Tensor& k,
                                const Tensor& v, const Tensor& o, const Tensor& d_o,
                                const Tensor& lse, const Tensor& dq, const Tensor& dk,
                                const Tensor& dv) const override {
    require_flash_head_dims(p);
    const Tensor workspace =
        Tensor::empty(Shape{kc::flash_attention_backward_workspace(p)}, DType::F32, Device::CUDA);
    visit_gpu_float(q.dtype(), "flash_attention backward", [&](auto tag) {
      using T = decltype(tag);
      kc::flash_attention_backward<T>(p, q.data<T>(), k.data<T>(), v.data<T>(), o.data<T>(),
                                      d_o.data<T>(), lse.data<float>(), dq.data<T>(), dk.data<T>(),
                                      dv.data<T>(), workspace.data<float>(), stream());
    });
  }

  void rope_forward(const Tensor& x, const Tensor& y, const Tensor& cos, const Tensor& sin,
                    int64_t position_offset, bool interleave) const override {
    const Tensor c = fp32_table(cos), s = fp32_table(sin);
    visit_gpu_float(x.dtype(), "rope", [&](auto tag) {
      using T = decltype(tag);
      kc::rope_forward<T>(x.data<T>(), attention_layout(x), y.data<T>(), attention_layout(y),
                          x.size(0), x.size(1), x.size(2), x.size(3), c.data<float>(),
                          s.data<float>(), position_offset, interleave, stream());
    });
  }

  void rope_backward(const Tensor& dy, const Tensor& dx, const Tensor& cos, const Tensor& sin,
                     int64_t position_offset, bool interleave) const override {
    const Tensor c = fp32_table(cos), s = fp32_table(sin);
    visit_gpu_float(dy.dtype(), "rope backward", [&](auto tag) {
      using T = decltype(tag);
      kc::rope_backward<T>(dy.data<T>(), attention_layout(dy), dx.data<T>(), attention_layout(dx),
                           dy.size(0), dy.size(1), dy.size(2), dy.size(3), c.data<float>(),
                           s.data<float>(), position_offset, interleave, stream());
    });
  }
};

}  // namespace

const AttentionKernels& attention_kernels() {
  static const CudaAttentionKernels table;
  return table;
}

}  // namespace latte::cuda
