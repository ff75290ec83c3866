// Kernel table of the neural-network ops (engine/ops/nn_ops.cpp): embedding, RMSNorm, softmax,
// fused cross-entropy and dropout. Tensors are contiguous, except RMSNorm's x, and share the
// table's device; the inputs and outputs of one call share one floating dtype, except that the
// weights of embedding and RMSNorm (and so their gradients) may be in the master dtype of the
// activations (master_dtype in engine/dtype.h: f32 under bf16, f64 under f32). What the table
// allocates itself, the statistics a backward needs (RMSNorm's 1/rms, cross-entropy's logsumexp)
// and the loss, comes in the dtype its kernels keep it in: the CPU's is the input's, CUDA's fp32
// (so the gradient of a CUDA loss, dloss, is fp32 too).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "engine/backend/backend.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace latte {

// What the cross-entropy forward returns: the loss and what its backward reads.
struct CrossEntropyForward {
  Tensor loss;     // 0-dim: the mean of -log p(target) over the counted rows
  Tensor lse;      // [rows]: logsumexp of each row of logits
  Tensor counted;  // 0-dim i64: the number of rows whose target is not ignore_index
};

// The distance in elements between consecutive rows of x (its last dimension) when x's last
// dimension is contiguous and its leading dimensions fold into one uniformly strided row index
// (dimensions of size 1 place nothing and are skipped); nullopt otherwise. RMSNorm reads such an
// x in place: MLA's latent c_kv, a narrow of the wider kv_a rows, is normalized without a copy.
inline std::optional<int64_t> uniform_row_stride(const Tensor& x) {
  const int64_t cols = x.size(-1);
  if (cols != 1 && x.stride(-1) != 1) return std::nullopt;
  std::optional<int64_t> row_stride;  // the stride of the innermost leading dimension > 1
  int64_t inner_rows = 1;             // rows spanned by the leading dimensions inside d
  for (int d = x.dim() - 2; d >= 0; --d) {
    if (x.size(d) == 1) continue;
    if (!row_stride)
      row_stride = x.stride(d);
    else if (x.stride(d) != *row_stride * inner_rows)
      return std::nullopt;
    inner_rows *= x.size(d);
  }
  return row_stride.value_or(cols);
}

// The number of rows of x's last dimension.
inline int64_t rows_of(const Tensor& x) {
  return x.numel() / std::max<int64_t>(x.size(-1), 1);
}

// uniform_row_stride(x) for the RMSNorm tables, or latte::Error naming `op` when the rows do not
// fold into one stride (the op passes such an x as a contiguous copy).
inline int64_t rms_norm_row_stride(const char* op, const Tensor& x) {
  const std::optional<int64_t> stride = uniform_row_stride(x);
  LATTE_CHECK(stride.has_value()) << op << ": the rows of " << x.describe()
                                  << " are not uniformly strided with a contiguous last dimension";
  return *stride;
}

class NnKernels {
 public:
  virtual ~NnKernels() = default;

  // Ids outside [0, vocab) are rejected with a latte::Error naming the op, the id and its flat
  // position: at once on the CPU; on CUDA (without a host sync) by a later embedding or
  // cross_entropy call once the check on the device has completed, the kernels meanwhile reading
  // a valid id in place of the bad one.

  // out[i, :] = weight[ids[i], :] (rounded to out's dtype); ids i32 [n], weight [vocab, dim], out
  // [n, dim].
  virtual void embedding_forward(const Tensor& ids, const Tensor& weight,
                                 const Tensor& out) const = 0;
  // OVERWRITES dweight [vocab, dim] with the sum of dout's rows per id (summed in dweight's
  // precision or wider).
  virtual void embedding_backward(const Tensor& ids, const Tensor& dout,
                                  const Tensor& dweight) const = 0;

  // y = RMSNorm(x) * weight over the last dimension of x, whose rows may lie uniform_row_stride(x)
  // apart (read in place); y is contiguous. Returns 1/rms per row ([rows]) for the backward.
  virtual Tensor rms_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& y,
                                  double eps) const = 0;
  // Writes dx (contiguous, like dy) and OVERWRITES dweight; x is strided as in the forward, rstd
  // is what rms_norm_forward returned.
  virtual void rms_norm_backward(const Tensor& x, const Tensor& weight, const Tensor& rstd,
                                 const Tensor& dy, const Tensor& dx,
                                 const Tensor& dweight) const = 0;

  // Softmax over the last dimension.
  virtual void softmax_forward(const Tensor& x, const Tensor& y) const = 0;
  virtual void softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx) const = 0;

  // Mean negative log-likelihood of targets (i32 [rows]) under softmax(logits [rows, vocab]),
  // rows whose target equals ignore_index left out; the loss is computed on the device, never
  // read back. The CPU rejects a batch where every target is ignored; CUDA returns NaN for it.
  virtual CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& targets,
                                                    int64_t ignore_index) const = 0;
  // dlogits = dloss / counted * (softmax(logits) - onehot(target)), 0 on ignored rows; dloss is
  // the 0-dim gradient of the loss, lse and counted what cross_entropy_forward returned.
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& targets,
                                      const Tensor& lse, const Tensor& counted, const Tensor& dloss,
                                      const Tensor& dlogits, int64_t ignore_index) const = 0;

  // Inverted dropout: mask[i] = 1/(1-p) where uniform(seed, offset + i) >= p, else 0 (the
  // counter-based stream of kernels/cpu/random.h, so every device draws the same mask);
  // y = x * mask.
  virtual void dropout_forward(const Tensor& x, const Tensor& y, const Tensor& mask, double p,
                               uint64_t seed, uint64_t offset) const = 0;
};

inline const NnKernels& nn_kernels(Device device) {
  return checked_table(backend_for(device).nn, device, "nn");
}

}  // namespace latte
