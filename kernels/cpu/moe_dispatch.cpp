#include "kernels/cpu/moe_dispatch.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"

namespace latte::kernels::cpu {

int64_t expert_capacity(int64_t n_tokens, int64_t top_k, int64_t n_experts,
                        double capacity_factor) {
  if (capacity_factor <= 0) return kDroplessCapacity;
  const double per_expert = static_cast<double>(n_tokens * top_k) / static_cast<double>(n_experts);
  return static_cast<int64_t>(std::ceil(capacity_factor * per_expert));
}

int64_t build_dispatch(const int32_t* expert_ids, int64_t n_tokens, int64_t top_k,
                       int64_t n_experts, int64_t capacity, int64_t* expert_offsets,
                       int64_t* sorted_assignment, int64_t* assignment_position) {
  const int64_t n_assignments = n_tokens * top_k;
  std::vector<int64_t> routed(n_experts, 0);
  for (int64_t a = 0; a < n_assignments; ++a) {
    const int32_t e = expert_ids[a];
    LATTE_CHECK(e >= 0 && e < n_experts)
        << "moe build_dispatch: expert id " << e << " of token " << a / top_k << " (slot "
        << a % top_k << ") is outside [0, " << n_experts << ")";
    ++routed[e];
  }
  // Kept block of expert e starts at kept_next[e]; its dropped block at dropped_next[e].
  std::vector<int64_t> kept_next(n_experts), dropped_next(n_experts);
  int64_t kept_total = 0;
  for (int64_t e = 0; e < n_experts; ++e) {
    expert_offsets[e] = kept_total;
    kept_next[e] = kept_total;
    kept_total += capacity < 0 ? routed[e] : std::min(routed[e], capacity);
  }
  expert_offsets[n_experts] = kept_total;
  int64_t dropped_total = 0;
  for (int64_t e = 0; e < n_experts; ++e) {
    dropped_next[e] = kept_total + dropped_total;
    dropped_total += routed[e] - (expert_offsets[e + 1] - expert_offsets[e]);
  }
  for (int64_t a = 0; a < n_assignments; ++a) {
    const int32_t e = expert_ids[a];
    if (kept_next[e] < expert_offsets[e + 1]) {
      const int64_t p = kept_next[e]++;
      sorted_assignment[p] = a;
      assignment_position[a] = p;
    } else {
      sorted_assignment[dropped_next[e]++] = a;
      assignment_position[a] = -1;
    }
  }
  return dropped_total;
}

template <typename T>
void gather_rows(const T* x, const int64_t* sorted_assignment, int64_t n_kept, int64_t top_k,
                 int64_t dim, T* x_sorted) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < n_kept; ++p) {
    const T* src = x + (sorted_assignment[p] / top_k) * dim;
    std::copy(src, src + dim, x_sorted + p * dim);
  }
}

template <typename T>
void gather_rows_backward(const T* dx_sorted, const int64_t* assignment_position, int64_t n_tokens,
                          int64_t top_k, int64_t dim, T* dx) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    T* out = dx + t * dim;
    std::fill(out, out + dim, T(0));
    for (int64_t k = 0; k < top_k; ++k) {
      const int64_t p = assignment_position[t * top_k + k];
      if (p < 0) continue;
      const T* src = dx_sorted + p * dim;
      for (int64_t j = 0; j < dim; ++j) out[j] += src[j];
    }
  }
}

template <typename T>
void combine_forward(const T* expert_out_sorted, const T* weights,
                     const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                     int64_t dim, T* y) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    T* out = y + t * dim;
    std::fill(out, out + dim, T(0));
    for (int64_t k = 0; k < top_k; ++k) {
      const int64_t a = t * top_k + k;
      const int64_t p = assignment_position[a];
      if (p < 0) continue;
      const T w = weights[a];
      const T* src = expert_out_sorted + p * dim;
      for (int64_t j = 0; j < dim; ++j) out[j] += w * src[j];
    }
  }
}

template <typename T>
void combine_backward(const T* dy, const T* expert_out_sorted, const T* weights,
                      const int64_t* assignment_position, int64_t n_tokens, int64_t top_k,
                      int64_t dim, T* d_expert_out_sorted, T* dweights) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const T* g = dy + t * dim;
    for (int64_t k = 0; k < top_k; ++k) {
      const int64_t a = t * top_k + k;
      const int64_t p = assignment_position[a];
      dweights[a] = 0;
      if (p < 0) continue;
      const T w = weights[a];
      const T* out = expert_out_sorted + p * dim;
      T* d_out = d_expert_out_sorted + p * dim;
      T dot = 0;
      for (int64_t j = 0; j < dim; ++j) {
        d_out[j] = w * g[j];
        dot += g[j] * out[j];
      }
      dweights[a] = dot;
    }
  }
}

#define LATTE_MOE_DISPATCH(T)                                                                     \
  template void gather_rows<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*);          \
  template void gather_rows_backward<T>(const T*, const int64_t*, int64_t, int64_t, int64_t, T*); \
  template void combine_forward<T>(const T*, const T*, const int64_t*, int64_t, int64_t, int64_t, \
                                   T*);                                                           \
  template void combine_backward<T>(const T*, const T*, const T*, const int64_t*, int64_t,        \
                                    int64_t, int64_t, T*, T*);
LATTE_MOE_DISPATCH(float)
LATTE_MOE_DISPATCH(double)
#undef LATTE_MOE_DISPATCH

}  // namespace latte::kernels::cpu
