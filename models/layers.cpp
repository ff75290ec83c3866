#include "models/layers.h"

#include "engine/ops.h"

namespace latte {

Linear::Linear(int64_t in, int64_t out, bool bias, const InitContext& init) {
  weight_ = register_parameter("weight", randn({out, in}, *init.gen, 0.0, init.std, init.dtype));
  if (bias) bias_ = register_parameter("bias", Tensor::zeros({out}, init.dtype));
}

Tensor Linear::forward(const Tensor& x) const {
  return ops::linear(x, weight_, bias_);  // master weights: linear rounds them to x's dtype
}

Embedding::Embedding(int64_t vocab, int64_t dim, const InitContext& init) {
  weight_ = register_parameter("weight", randn({vocab, dim}, *init.gen, 0.0, init.std, init.dtype));
}

Tensor Embedding::forward(const Tensor& ids, DType dtype) const {
  return ops::embedding(ids, weight_, dtype);  // master weights: rows rounded as they are copied
}

RMSNorm::RMSNorm(int64_t dim, double eps, const InitContext& init) : eps_(eps) {
  weight_ = register_parameter("weight", Tensor::ones({dim}, init.dtype));
}

Tensor RMSNorm::forward(const Tensor& x) const {
  return ops::rms_norm(x, weight_, eps_);  // master weights are read as stored
}

}  // namespace latte
