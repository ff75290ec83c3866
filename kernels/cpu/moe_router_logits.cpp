#include "kernels/cpu/moe_router_logits.h"

namespace latte::kernels::cpu {

template <typename X, typename W>
void router_logits_forward(const X* x, const W* w, int64_t n_tokens, int64_t dim, int64_t n_experts,
                           W* logits) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < n_tokens; ++n) {
    const X* row = x + n * dim;
    for (int64_t e = 0; e < n_experts; ++e) {
      const W* weight = w + e * dim;
      W sum = 0;
      for (int64_t j = 0; j < dim; ++j) sum += static_cast<W>(row[j]) * weight[j];
      logits[n * n_experts + e] = sum;
    }
  }
}

template <typename X, typename W>
void router_logits_backward(const W* dlogits, const X* x, const W* w, int64_t n_tokens, int64_t dim,
                            int64_t n_experts, X* dx, W* dw) {
  if (dx != nullptr) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < n_tokens; ++n)
      for (int64_t j = 0; j < dim; ++j) {
        W sum = 0;
        for (int64_t e = 0; e < n_experts; ++e) sum += dlogits[n * n_experts + e] * w[e * dim + j];
        dx[n * dim + j] = static_cast<X>(sum);
      }
  }
  if (dw != nullptr) {
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < dim; ++j)
      for (int64_t e = 0; e < n_experts; ++e) {
        W sum = 0;
        for (int64_t n = 0; n < n_tokens; ++n)
          sum += dlogits[n * n_experts + e] * static_cast<W>(x[n * dim + j]);
        dw[e * dim + j] = sum;
      }
  }
}

#define LATTE_ROUTER_LOGITS(X, W)                                                               \
  template void router_logits_forward<X, W>(const X*, const W*, int64_t, int64_t, int64_t, W*); \
  template void router_logits_backward<X, W>(const W*, const X*, const W*, int64_t, int64_t,    \
                                             int64_t, X*, W*);
LATTE_ROUTER_LOGITS(float, float)
LATTE_ROUTER_LOGITS(float, double)
LATTE_ROUTER_LOGITS(double, double)
#undef LATTE_ROUTER_LOGITS

}  // namespace latte::kernels::cpu
