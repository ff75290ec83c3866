// The CUDA table of the DeepSeekMoE ops, over kernels/cuda/moe_routing.cuh, moe_dispatch.cuh,
// moe_balance.cuh and gemm.cuh. Router, gate weights, balance losses and the correction bias are
// f32; token rows are f32 or bf16. The dispatch downloads its counts once (the expert GEMMs need
// their row counts on the host), by an asynchronous copy into pinned memory that the host waits
// for with an event, so the work issued meanwhile (the shared experts) keeps the device busy;
// everything else stays on the stream without a host sync. (The expert GEMMs are the linear
// table's, one per projection per expert with rows: engine/ops/moe_ops.cpp.)
#include "engine/backend/moe_kernels.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_runtime.h"
#include "engine/cuda/pinned_download.h"
#include "engine/dispatch.h"
#include "kernels/cuda/gemm.cuh"
#include "kernels/cuda/moe_balance.cuh"
#include "kernels/cuda/moe_dispatch.cuh"
#include "kernels/cuda/moe_router_logits.cuh"
#include "kernels/cuda/moe_routing.cuh"

namespace latte::cuda {

namespace {

namespace kc = kernels::cuda;
using kernels::cpu::RouterScoring;
using kernels::cpu::RouterSpec;

// The f32 data of a tensor the CUDA router math reads or writes.
float* f32(const Tensor& t, const char* op) {
  LATTE_CHECK(t.dtype() == DType::F32)
      << op << ": on CUDA the router, gate weights and balance losses are f32, got "
      << t.describe();
  return t.data<float>();
}

// At least `bytes` of device scratch memory; the caching allocator reuses it in stream order once
// the tensor goes, so it may be dropped right after the launches that use it.
Tensor scratch(int64_t bytes) {
  return Tensor::empty({(bytes + 7) / 8}, DType::I64, Device::CUDA);
}

class CudaMoeKernels final : public MoeKernels {
 public:
  // Weights that fit the fused kernels (kernels/cuda/moe_router_logits.cuh) run there; larger
  // ones as fp32 cuBLAS GEMMs over an fp32 copy of the rows.
  void router_logits(const Tensor& x, const Tensor& w, const Tensor& logits) const override {
    const char* op = "moe_router_logits";
    const int64_t n = x.size(0), d = x.size(1), e = w.size(0);
    if (kc::router_logits_fused(d, e)) {
      visit_gpu_float(x.dtype(), op, [&](auto tag) {
        using X = decltype(tag);
        kc::router_logits_forward<X>(x.data<X>(), f32(w, op), n, d, e, f32(logits, op), stream());
      });
      return;
    }
    const Tensor xf = x.detached_cast(DType::F32);
    kc::gemm<float>(blas(), stream(), false, true, n, e, d, 1.f, xf.data<float>(), d, f32(w, op), d,
                    0.f, f32(logits, op), e);
  }

  void router_logits_backward(const Tensor& dlogits, const Tensor& x, const Tensor& w,
                              const Tensor& dx, const Tensor& dw) const override {
    const char* op = "moe_router_logits backward";
    const int64_t n = x.size(0), d = x.size(1), e = w.size(0);
    if (kc::router_logits_fused(d, e)) {
      const Tensor workspace =
          dw.defined() ? scratch(kc::router_logits_backward_workspace(n, d, e) * sizeof(float))
                       : Tensor();
      visit_gpu_float(x.dtype(), op, [&](auto tag) {
        using X = decltype(tag);
        kc::router_logits_backward<X>(
            f32(dlogits, op), x.data<X>(), f32(w, op), n, d, e,
            dx.defined() ? dx.data<X>() : nullptr, dw.defined() ? f32(dw, op) : nullptr,
            workspace.defined() ? static_cast<float*>(workspace.raw_data()) : nullptr, stream());
      });
      return;
    }
    if (dx.defined()) {
      const Tensor dxf =
          dx.dtype() == DType::F32 ? dx : Tensor::empty(dx.shape(), DType::F32, Device::CUDA);
      kc::gemm<float>(blas(), stream(), false, false, n, d, e, 1.f, f32(dlogits, op), e, f32(w, op),
                      d, 0.f, dxf.data<float>(), d);
      if (dxf.dtype() != dx.dtype()) Tensor(dx).copy_(dxf);
    }
    if (dw.defined()) {
      const Tensor xf = x.detached_cast(DType::F32);
      kc::gemm<float>(blas(), stream(), true, false, e, d, n, 1.f, f32(dlogits, op), e,
                      xf.data<float>(), d, 0.f, f32(dw, op), d);
    }
  }

  void router_scores_forward(const Tensor& logits, RouterScoring scoring,
                             const Tensor& scores) const override {
    const char* op = "moe_router_scores";
    kc::router_scores_forward(f32(logits, op), logits.size(0), logits.size(1), scoring,
                              f32(scores, op), stream());
  }

  void router_scores_backward(const Tensor& scores, const Tensor& dscores, RouterScoring scoring,
                              const Tensor& dlogits) const override {
    const char* op = "moe_router_scores backward";
    kc::router_scores_backward(f32(scores, op), f32(dscores, op), scores.size(0), scores.size(1),
                               scoring, f32(dlogits, op), stream());
  }

  void select_experts(const Tensor& scores, const Tensor& correction_bias, const RouterSpec& spec,
                      const Tensor& expert_ids, const Tensor& weights) const override {
    const char* op = "moe_select_experts";
    kc::select_experts(
        f32(scores, op), correction_bias.defined() ? f32(correction_bias, op) : nullptr,
        scores.size(0), spec, expert_ids.data<int32_t>(), f32(weights, op), stream());
  }

  void expert_weights_backward(const Tensor& scores, const Tensor& expert_ids,
                               const Tensor& dweights, const RouterSpec& spec,
                               const Tensor& dscores) const override {
    const char* op = "moe_select_experts backward";
    kc::expert_weights_backward(f32(scores, op), expert_ids.data<int32_t>(), f32(dweights, op),
                                scores.size(0), spec, f32(dscores, op), stream());
  }

  ExpertDispatch build_dispatch(const Tensor& expert_ids, int64_t n_experts, int64_t capacity,
                                const std::function<void()>& while_counting) const override {
    const int64_t n_tokens = expert_ids.size(0), top_k = expert_ids.size(1);
    const int64_t n_assignments = n_tokens * top_k;
    const int32_t* ids = expert_ids.data<int32_t>();
    // [expert offsets E+1 | load E | dropped, invalid]: all the host needs, in one download.
    const Tensor counts = Tensor::zeros({2 * n_experts + 3}, DType::I64, Device::CUDA);
    int64_t* offsets = counts.data<int64_t>();
    int64_t* load = offsets + n_experts + 1;
    int64_t* status = load + n_experts;
    ExpertDispatch d;
    d.sorted_assignment = Tensor::empty({n_assignments}, DType::I64, Device::CUDA);
    d.assignment_position = Tensor::empty({n_assignments}, DType::I64, Device::CUDA);
    const Tensor workspace = scratch(kc::build_dispatch_workspace_bytes(n_assignments, n_experts));
    kc::build_dispatch(ids, n_tokens, top_k, n_experts, capacity, offsets, load,
                       d.sorted_assignment.data<int64_t>(), d.assignment_position.data<int64_t>(),
                       status, workspace.raw_data(), stream());
    const std::vector<int64_t> host = counts_.download(counts, while_counting);
    const int64_t invalid = host[2 * n_experts + 2];
    LATTE_CHECK(invalid == 0) << "moe_dispatch: " << invalid << " of the " << n_assignments
                              << " expert ids are outside [0, " << n_experts << ")";
    d.expert_offsets = counts.narrow(0, 0, n_experts + 1);
    d.host_offsets.assign(host.begin(), host.begin() + n_experts + 1);
    d.tokens_per_expert.assign(host.begin() + n_experts + 1, host.begin() + 2 * n_experts + 1);
    d.dropped = host[2 * n_experts + 1];
    return d;
  }

  void gather_rows(const Tensor& x, const Tensor& sorted_assignment, const Tensor& expert_offsets,
                   int64_t top_k, const Tensor& x_sorted) const override {
    const int64_t* n_kept = expert_offsets.data<int64_t>() + (expert_offsets.numel() - 1);
    visit_gpu_float(x.dtype(), "moe_gather", [&](auto tag) {
      using T = decltype(tag);
      kc::gather_rows<T>(x.data<T>(), sorted_assignment.data<int64_t>(), n_kept, x_sorted.size(0),
                         top_k, x.size(1), x_sorted.data<T>(), stream());
    });
  }

  void gather_rows_backward(const Tensor& dx_sorted, const Tensor& assignment_position,
                            int64_t top_k, const Tensor& dx) const override {
    visit_gpu_float(dx.dtype(), "moe_gather backward", [&](auto tag) {
      using T = decltype(tag);
      kc::gather_rows_backward<T>(dx_sorted.data<T>(), assignment_position.data<int64_t>(),
                                  dx.size(0), top_k, dx.size(1), dx.data<T>(), stream());
    });
  }

  void combine_forward(const Tensor& out_sorted, const Tensor& weights,
                       const Tensor& assignment_position, const Tensor& y) const override {
    const char* op = "moe_combine";
    visit_gpu_float(out_sorted.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      kc::combine_forward<T>(out_sorted.data<T>(), f32(weights, op),
                             assignment_position.data<int64_t>(), y.size(0), weights.size(1),
                             y.size(1), y.data<T>(), stream());
    });
  }

  void combine_backward(const Tensor& dy, const Tensor& out_sorted, const Tensor& weights,
                        const Tensor& assignment_position, const Tensor& dout_sorted,
                        const Tensor& dweights) const override {
    const char* op = "moe_combine backward";
    visit_gpu_float(out_sorted.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      kc::combine_backward<T>(dy.data<T>(), out_sorted.data<T>(), f32(weights, op),
                              assignment_position.data<int64_t>(), dy.size(0), weights.size(1),
                              dy.size(1), dout_sorted.data<T>(), f32(dweights, op), stream());
    });
  }

  void seq_aux_loss_forward(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                            double alpha, const Tensor& loss) const override {
    const char* op = "moe_seq_aux_loss";
    const int64_t seq_len = scores.size(0) / n_seqs, n_experts = scores.size(1);
    const Tensor workspace = scratch(kc::balance_loss_workspace_bytes(n_seqs, seq_len, n_experts));
    kc::seq_aux_loss_forward(f32(scores, op), expert_ids.data<int32_t>(), n_seqs, seq_len,
                             n_experts, expert_ids.size(1), static_cast<float>(alpha),
                             f32(loss, op), workspace.raw_data(), stream());
  }

  void seq_aux_loss_backward(const Tensor& scores, const Tensor& expert_ids, int64_t n_seqs,
                             double alpha, const Tensor& dloss,
                             const Tensor& dscores) const override {
    const char* op = "moe_seq_aux_loss backward";
    const int64_t seq_len = scores.size(0) / n_seqs, n_experts = scores.size(1);
    const Tensor workspace = scratch(kc::balance_loss_workspace_bytes(n_seqs, seq_len, n_experts));
    kc::seq_aux_loss_backward(f32(scores, op), expert_ids.data<int32_t>(), n_seqs, seq_len,
                              n_experts, expert_ids.size(1), static_cast<float>(alpha),
                              f32(dloss, op), f32(dscores, op), workspace.raw_data(), stream());
  }

  void switch_aux_loss_forward(const Tensor& scores, const Tensor& expert_ids, double alpha,
                               const Tensor& loss) const override {
    const char* op = "moe_switch_aux_loss";
    const int64_t n_tokens = scores.size(0), n_experts = scores.size(1);
    const Tensor workspace = scratch(kc::balance_loss_workspace_bytes(1, n_tokens, n_experts));
    kc::switch_aux_loss_forward(f32(scores, op), expert_ids.data<int32_t>(), n_tokens, n_experts,
                                expert_ids.size(1), static_cast<float>(alpha), f32(loss, op),
                                workspace.raw_data(), stream());
  }

  void switch_aux_loss_backward(const Tensor& scores, const Tensor& expert_ids, double alpha,
                                const Tensor& dloss, const Tensor& dscores) const override {
    const char* op = "moe_switch_aux_loss backward";
    const int64_t n_tokens = scores.size(0), n_experts = scores.size(1);
    const Tensor workspace = scratch(kc::balance_loss_workspace_bytes(1, n_tokens, n_experts));
    kc::switch_aux_loss_backward(f32(scores, op), expert_ids.data<int32_t>(), n_tokens, n_experts,
                                 expert_ids.size(1), static_cast<float>(alpha), f32(dloss, op),
                                 f32(dscores, op), workspace.raw_data(), stream());
  }

  void update_correction_bias(const Tensor& bias, const std::vector<int64_t>& load,
                              double gamma) const override {
    const int64_t n_experts = bias.size(0);
    const Tensor device_load = Tensor::from_vector(load, {n_experts}).to(Device::CUDA);
    kc::update_correction_bias(f32(bias, "moe_update_correction_bias"), device_load.data<int64_t>(),
                               n_experts, static_cast<float>(gamma), stream());
  }

 private:
  mutable PinnedDownload counts_;  // the dispatch's counts on their way to the host
};

}  // namespace

const MoeKernels& moe_kernels() {
  static const CudaMoeKernels table;
  return table;
}

}  // namespace latte::cuda
