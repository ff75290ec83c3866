// AdamW update for one parameter tensor (decoupled weight decay, bias correction), and the
// sum of squares used by global-norm clipping. Master weights and moments are f32 (or f64).
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
// The gradient is multiplied by grad_scale first (clipping).
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

struct AdamWStep {
  double lr, beta1, beta2, eps, weight_decay, grad_scale;
  int64_t step;  // 1-based, for bias correction
};

template <typename T>
void adamw_update(T* param, const T* grad, T* m, T* v, int64_t n, const AdamWStep& s);

}  // namespace latte::kernels::cpu
