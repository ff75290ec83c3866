#include "kernels/cpu/attention_naive.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_internal.h"
#include "kernels/cpu/gemm.h"

namespace latte::kernels::cpu {

namespace {

// Softmax over the first `visible` entries of a row, zero for the rest.
template <typename T>
void masked_softmax_row(T* row, int64_t visible, int64_t len) {
  T max_score = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < visible; ++j) max_score = std::max(max_score, row[j]);
  T sum = 0;
  for (int64_t j = 0; j < visible; ++j) {
    row[j] = std::exp(row[j] - max_score);
    sum += row[j];
  }
  const T inv = visible > 0 ? T(1) / sum : T(0);
  for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
  for (int64_t j = visible; j < len; ++j) row[j] = 0;
}

}  // namespace

template <typename T>
void naive_attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* o,
                             T* probs) {
  const bool use_threads = detail::worth_threads(p);
  const int64_t group = p.group_size(), tq = p.q_len, tk = p.kv_len;
  const detail::LeadingDims ld = detail::leading_dims(p);
#pragma omp parallel for schedule(static) if (use_threads)
  for (int64_t bh = 0; bh < p.batch * p.q_heads; ++bh) {
    const int64_t b = bh / p.q_heads, h = bh % p.q_heads, g = h / group;
    const T* qh = q + b * p.q.batch_stride + h * p.q.head_stride;
    const T* kg = k + b * p.k.batch_stride + g * p.k.head_stride;
    const T* vg = v + b * p.v.batch_stride + g * p.v.head_stride;
    T* oh = o + b * p.o.batch_stride + h * p.o.head_stride;
    T* ph = probs + bh * tq * tk;
    gemm(false, true, tq, tk, p.qk_dim, T(p.scale), qh, ld.q, kg, ld.k, T(0), ph, tk);
    for (int64_t i = 0; i < tq; ++i) masked_softmax_row(ph + i * tk, p.visible_keys(i), tk);
    gemm(false, false, tq, p.v_dim, tk, T(1), ph, tk, vg, ld.v, T(0), oh, ld.o);
  }
}

template <typename T>
void naive_attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                              const T* probs, const T* d_o, T* dq, T* dk, T* dv) {
  const bool use_threads = detail::worth_threads(p);
  const int64_t group = p.group_size(), tq = p.q_len, tk = p.kv_len;
  const detail::LeadingDims ld = detail::leading_dims(p);
  const T scale = T(p.scale);
  // One task per (batch, kv head): it owns dk/dv of that head and dq of the query heads reading it,
  // so every output is written by one thread in a fixed order.
#pragma omp parallel if (use_threads)
  {
    std::vector<T> ds(tq * tk);
#pragma omp for schedule(static)
    for (int64_t bg = 0; bg < p.batch * p.kv_heads; ++bg) {
      const int64_t b = bg / p.kv_heads, g = bg % p.kv_heads;
      const T* kg = k + b * p.k.batch_stride + g * p.k.head_stride;
      const T* vg = v + b * p.v.batch_stride + g * p.v.head_stride;
      T* dkg = dk + b * p.k.batch_stride + g * p.k.head_stride;
      T* dvg = dv + b * p.v.batch_stride + g * p.v.head_stride;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const T* qh = q + b * p.q.batch_stride + h * p.q.head_stride;
        const T* doh = d_o + b * p.o.batch_stride + h * p.o.head_stride;
        const T* ph = probs + (b * p.q_heads + h) * tq * tk;
        T* dqh = dq + b * p.q.batch_stride + h * p.q.head_stride;
        const T beta = h == g * group ? T(0) : T(1);  // the group's first head overwrites dk/dv
        // dv += probs^T d_o;  d_probs = d_o v^T
        gemm(true, false, tk, p.v_dim, tq, T(1), ph, tk, doh, ld.o, beta, dvg, ld.v);
        gemm(false, true, tq, tk, p.v_dim, T(1), doh, ld.o, vg, ld.v, T(0), ds.data(), tk);
        // d_scores = probs * (d_probs - rowsum(probs * d_probs)) (softmax Jacobian)
        for (int64_t i = 0; i < tq; ++i) {
          const T* prow = ph + i * tk;
          T* row = ds.data() + i * tk;
          T dot = 0;
          for (int64_t j = 0; j < tk; ++j) dot += prow[j] * row[j];
          for (int64_t j = 0; j < tk; ++j) row[j] = prow[j] * (row[j] - dot);
        }
        // dq = scale d_scores k;  dk += scale d_scores^T q
        gemm(false, false, tq, p.qk_dim, tk, scale, ds.data(), tk, kg, ld.k, T(0), dqh, ld.q);
        gemm(true, false, tk, p.qk_dim, tq, scale, ds.data(), tk, qh, ld.q, beta, dkg, ld.k);
      }
    }
  }
}

template void naive_attention_forward<float>(const AttentionProblem&, const float*, const float*,
                                             const float*, float*, float*);
template void naive_attention_forward<double>(const AttentionProblem&, const double*, const double*,
                                              const double*, double*, double*);
template void naive_attention_backward<float>(const AttentionProblem&, const float*, const float*,
                                              const float*, const float*, const float*, float*,
                                              float*, float*);
template void naive_attention_backward<double>(const AttentionProblem&, const double*,
                                               const double*, const double*, const double*,
                                               const double*, double*, double*, double*);

}  // namespace latte::kernels::cpu
