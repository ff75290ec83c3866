#include "kernels/cpu/attention_flash.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/attention_internal.h"
#include "kernels/cpu/gemm.h"

namespace latte::kernels::cpu {

namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// exp(x) in float for the softmax arguments (x <= ~0), inlined and branch-free so that the tile
// loops vectorize instead of calling libm per element (which took a quarter of the time):
// x = n ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), exp(r) by its degree-7 Taylor
// polynomial (truncation < 6e-9 relative), times 2^n built in the exponent bits. Relative error
// below 1.1e-7 (about one ulp, checked against double exp over every float in [-87, 0.5]).
// Arguments below -87 (down to -inf) are raised to -87 and give 1.6e-38, which no softmax sum can
// see; the clamp compares bit patterns because a float compare may trap, which keeps GCC from
// vectorizing it, and it lets NaN through. Doubles use std::exp.
inline float softmax_exp(float x) {
  constexpr uint32_t kLowest = std::bit_cast<uint32_t>(-87.0f), kNegInf = 0xff800000u;
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  // All ones when bits encode a value in [-inf, -87) (unsigned order of negative floats).
  const uint32_t below = 0u - static_cast<uint32_t>(bits - kLowest - 1 < kNegInf - kLowest);
  x = std::bit_cast<float>((kLowest & below) | (bits & ~below));
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  const float p =
      1 +
      r * (1 + r * (0.5f + r * (1.0f / 6 +
                                r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r / 5040))))));
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}
inline double softmax_exp(double x) {
  return std::exp(x);
}

// How many of the `cols` keys of the tile starting at key j0 query i attends (a prefix).
int64_t visible_in_tile(const AttentionProblem& p, int64_t i, int64_t j0, int64_t cols) {
  return std::clamp<int64_t>(p.visible_keys(i) - j0, 0, cols);
}

template <typename T>
void zero_rows(T* x, int64_t rows, int64_t stride, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) std::fill_n(x + r * stride, dim, T(0));
}

// Scores of a [rows, cols] tile (rows ld apart) become probabilities exp(s - lse) using each row's
// logsumexp from the forward pass; masked entries become 0.
template <typename T>
void probabilities_from_lse(const AttentionProblem& p, T* s, int64_t ld, int64_t i0, int64_t rows,
                            int64_t j0, int64_t cols, const T* lse_rows) {
  for (int64_t r = 0; r < rows; ++r) {
    T* row = s + r * ld;
    const int64_t n = visible_in_tile(p, i0 + r, j0, cols);
    const T lse = lse_rows[r];
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) row[c] = softmax_exp(row[c] - lse);
    std::fill(row + n, row + cols, T(0));
  }
}

// Softmax backward on a tile: d_scores = probs * (d_probs - delta), written over d_probs.
template <typename T>
void scores_gradient(const T* probs, T* d_probs, int64_t ld, int64_t rows, int64_t cols,
                     const T* delta_rows) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* prow = probs + r * ld;
    T* row = d_probs + r * ld;
    const T delta = delta_rows[r];
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) row[c] = prow[c] * (row[c] - delta);
  }
}

// The state one backward call shares between its tile steps.
template <typename T>
struct BackwardPass {
  const AttentionProblem& p;
  const T *q, *k, *v, *d_o, *lse;
  const T* delta;  // rowsum(d_o * o), [batch, q_heads, q_len]
  T *dq, *dk, *dv;
  int64_t br, bc;  // query rows and key columns per tile
  detail::LeadingDims ld = detail::leading_dims(p);

  int64_t q_offset(int64_t b, int64_t h, int64_t i) const {
    return b * p.q.batch_stride + h * p.q.head_stride + i * p.q.token_stride;
  }
  int64_t o_offset(int64_t b, int64_t h, int64_t i) const {
    return b * p.o.batch_stride + h * p.o.head_stride + i * p.o.token_stride;
  }

  // d_scores of the tile (queries [i0, i0 + rows) of head h, keys [j0, j0 + cols) of kv head g)
  // into ds, with the probabilities in s; when v_grad is set, first adds probs^T d_o to it.
  void scores_gradient_tile(int64_t b, int64_t h, int64_t g, int64_t i0, int64_t rows, int64_t j0,
                            int64_t cols, T* s, T* ds, T* v_grad) const {
    const int64_t bh = b * p.q_heads + h;
    const T* kt = k + b * p.k.batch_stride + g * p.k.head_stride + j0 * p.k.token_stride;
    const T* vt = v + b * p.v.batch_stride + g * p.v.head_stride + j0 * p.v.token_stride;
    const T* do_t = d_o + o_offset(b, h, i0);
    gemm(false, true, rows, cols, p.qk_dim, T(p.scale), q + q_offset(b, h, i0), ld.q, kt, ld.k,
         T(0), s, bc);
    probabilities_from_lse(p, s, bc, i0, rows, j0, cols, lse + bh * p.q_len + i0);
    if (v_grad) gemm(true, false, cols, p.v_dim, rows, T(1), s, bc, do_t, ld.o, T(1), v_grad, ld.v);
    gemm(false, true, rows, cols, p.v_dim, T(1), do_t, ld.o, vt, ld.v, T(0), ds, bc);
    scores_gradient(s, ds, bc, rows, cols, delta + bh * p.q_len + i0);
  }

  // Overwrites dk and dv of the key tile at j0 of kv head g with the sum over every query of the
  // group's heads that sees it; with_dq also adds the tile's share to those queries' dq.
  void key_tile(int64_t b, int64_t g, int64_t j0, bool with_dq, T* s, T* ds) const {
    const int64_t cols = std::min(bc, p.kv_len - j0);
    const int64_t k_off = b * p.k.batch_stride + g * p.k.head_stride + j0 * p.k.token_stride;
    const int64_t v_off = b * p.v.batch_stride + g * p.v.head_stride + j0 * p.v.token_stride;
    zero_rows(dk + k_off, cols, p.k.token_stride, p.qk_dim);
    zero_rows(dv + v_off, cols, p.v.token_stride, p.v_dim);
    const T scale = T(p.scale);
    for (int64_t h = g * p.group_size(); h < (g + 1) * p.group_size(); ++h) {
      // Query tiles start at the first query that sees this key tile (causal).
      for (int64_t i0 = p.first_query_seeing(j0); i0 < p.q_len; i0 += br) {
        const int64_t rows = std::min(br, p.q_len - i0);
        scores_gradient_tile(b, h, g, i0, rows, j0, cols, s, ds, dv + v_off);
        gemm(true, false, cols, p.qk_dim, rows, scale, ds, bc, q + q_offset(b, h, i0), ld.q, T(1),
             dk + k_off, ld.k);
        if (with_dq)
          gemm(false, false, rows, p.qk_dim, cols, scale, ds, bc, k + k_off, ld.k, T(1),
               dq + q_offset(b, h, i0), ld.q);
      }
    }
  }

  // Overwrites dq of the query tile at i0 of head h, recomputing its score tiles.
  void query_tile(int64_t b, int64_t h, int64_t i0, T* s, T* ds) const {
    const int64_t rows = std::min(br, p.q_len - i0), g = h / p.group_size();
    T* dq_t = dq + q_offset(b, h, i0);
    zero_rows(dq_t, rows, p.q.token_stride, p.qk_dim);
    const int64_t kv_end = p.visible_keys(i0 + rows - 1);
    for (int64_t j0 = 0; j0 < kv_end; j0 += bc) {
      const int64_t cols = std::min(bc, kv_end - j0);
      scores_gradient_tile(b, h, g, i0, rows, j0, cols, s, ds, nullptr);
      const T* kt = k + b * p.k.batch_stride + g * p.k.head_stride + j0 * p.k.token_stride;
      gemm(false, false, rows, p.qk_dim, cols, T(p.scale), ds, bc, kt, ld.k, T(1), dq_t, ld.q);
    }
  }
};

}  // namespace

template <typename T>
void flash_attention_forward(const AttentionProblem& p, const T* q, const T* k, const T* v, T* o,
                             T* lse, FlashSchedule schedule) {
  const bool use_threads = detail::worth_threads(p);
  const int64_t br = schedule.q_tile, bc = schedule.kv_tile, group = p.group_size();
  const int64_t q_tiles = ceil_div(p.q_len, br), vd = p.v_dim;
  const detail::LeadingDims ld = detail::leading_dims(p);
  const T scale = T(p.scale), neg_inf = -std::numeric_limits<T>::infinity();
#pragma omp parallel if (use_threads)
  {
    std::vector<T> s(br * bc), acc(br * vd), row_max(br), row_sum(br);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < p.batch * p.q_heads * q_tiles; ++task) {
      const int64_t bh = task / q_tiles, b = bh / p.q_heads, h = bh % p.q_heads, g = h / group;
      const int64_t i0 = (task % q_tiles) * br, rows = std::min(br, p.q_len - i0);
      const T* qt = q + b * p.q.batch_stride + h * p.q.head_stride + i0 * p.q.token_stride;
      const T* kg = k + b * p.k.batch_stride + g * p.k.head_stride;
      const T* vg = v + b * p.v.batch_stride + g * p.v.head_stride;
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(row_max.begin(), row_max.end(), neg_inf);
      std::fill(row_sum.begin(), row_sum.end(), T(0));
      // Key tiles past the last key the tile's last row sees are skipped (causal).
      const int64_t kv_end = p.visible_keys(i0 + rows - 1);
      for (int64_t j0 = 0; j0 < kv_end; j0 += bc) {
        const int64_t cols = std::min(bc, kv_end - j0);
        gemm(false, true, rows, cols, p.qk_dim, scale, qt, ld.q, kg + j0 * p.k.token_stride, ld.k,
             T(0), s.data(), bc);
        // Online softmax: exponentiate against the running max, rescale what came before.
        for (int64_t r = 0; r < rows; ++r) {
          T* row = s.data() + r * bc;
          const int64_t n = visible_in_tile(p, i0 + r, j0, cols);
          std::fill(row + n, row + cols, T(0));
          if (n == 0) continue;
          T new_max = row_max[r];
#pragma omp simd reduction(max : new_max)
          for (int64_t c = 0; c < n; ++c) new_max = std::max(new_max, row[c]);
#pragma omp simd
          for (int64_t c = 0; c < n; ++c) row[c] = softmax_exp(row[c] - new_max);
          T sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t c = 0; c < n; ++c) sum += row[c];
          if (new_max != row_max[r]) {
            const T alpha = std::exp(row_max[r] - new_max);
            row_sum[r] *= alpha;
#pragma omp simd
            for (int64_t c = 0; c < vd; ++c) acc[r * vd + c] *= alpha;
            row_max[r] = new_max;
          }
          row_sum[r] += sum;
        }
        gemm(false, false, rows, vd, cols, T(1), s.data(), bc, vg + j0 * p.v.token_stride, ld.v,
             T(1), acc.data(), vd);
      }
      T* ot = o + b * p.o.batch_stride + h * p.o.head_stride + i0 * p.o.token_stride;
      T* lse_t = lse + bh * p.q_len + i0;
      for (int64_t r = 0; r < rows; ++r) {
        const bool sees_keys = p.visible_keys(i0 + r) > 0;
        const T inv = sees_keys ? T(1) / row_sum[r] : T(0);
        for (int64_t c = 0; c < vd; ++c) ot[r * p.o.token_stride + c] = acc[r * vd + c] * inv;
        lse_t[r] = sees_keys ? row_max[r] + std::log(row_sum[r]) : neg_inf;
      }
    }
  }
}

template <typename T>
void flash_attention_backward(const AttentionProblem& p, const T* q, const T* k, const T* v,
                              const T* o, const T* d_o, const T* lse, T* dq, T* dk, T* dv,
                              FlashSchedule schedule) {
  const bool use_threads = detail::worth_threads(p);
  const int64_t br = schedule.q_tile, bc = schedule.kv_tile, tq = p.q_len;
  std::vector<T> delta(p.batch * p.q_heads * tq);
#pragma omp parallel for schedule(static) if (use_threads)
  for (int64_t bh = 0; bh < p.batch * p.q_heads; ++bh) {
    const int64_t b = bh / p.q_heads, h = bh % p.q_heads;
    for (int64_t i = 0; i < tq; ++i) {
      const int64_t offset = b * p.o.batch_stride + h * p.o.head_stride + i * p.o.token_stride;
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (int64_t c = 0; c < p.v_dim; ++c) dot += d_o[offset + c] * o[offset + c];
      delta[bh * tq + i] = dot;
    }
  }
  const BackwardPass<T> pass{p, q, k, v, d_o, lse, delta.data(), dq, dk, dv, br, bc};
  const int64_t kv_tiles = ceil_div(p.kv_len, bc), q_tiles = ceil_div(tq, br);

  if (p.batch * p.kv_heads >= schedule.fused_backward_min_heads) {
    // One pass, one task per (batch, kv head): it owns dk/dv of the head and dq of its group.
#pragma omp parallel if (use_threads)
    {
      std::vector<T> s(br * bc), ds(br * bc);
#pragma omp for schedule(dynamic)
      for (int64_t bg = 0; bg < p.batch * p.kv_heads; ++bg) {
        const int64_t b = bg / p.kv_heads, g = bg % p.kv_heads;
        for (int64_t h = g * p.group_size(); h < (g + 1) * p.group_size(); ++h)
          zero_rows(dq + pass.q_offset(b, h, 0), tq, p.q.token_stride, p.qk_dim);
        for (int64_t j0 = 0; j0 < p.kv_len; j0 += bc)
          pass.key_tile(b, g, j0, true, s.data(), ds.data());
      }
    }
    return;
  }
  // Two passes with more tasks: dk/dv per (batch, kv head, key tile), then dq per (batch, query
  // head, query tile), which recomputes the score tiles.
#pragma omp parallel if (use_threads)
  {
    std::vector<T> s(br * bc), ds(br * bc);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < p.batch * p.kv_heads * kv_tiles; ++task) {
      const int64_t bg = task / kv_tiles;
      pass.key_tile(bg / p.kv_heads, bg % p.kv_heads, (task % kv_tiles) * bc, false, s.data(),
                    ds.data());
    }
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < p.batch * p.q_heads * q_tiles; ++task) {
      const int64_t bh = task / q_tiles;
      pass.query_tile(bh / p.q_heads, bh % p.q_heads, (task % q_tiles) * br, s.data(), ds.data());
    }
  }
}

template void flash_attention_forward<float>(const AttentionProblem&, const float*, const float*,
                                             const float*, float*, float*, FlashSchedule);
template void flash_attention_forward<double>(const AttentionProblem&, const double*, const double*,
                                              const double*, double*, double*, FlashSchedule);
template void flash_attention_backward<float>(const AttentionProblem&, const float*, const float*,
                                              const float*, const float*, const float*,
                                              const float*, float*, float*, float*, FlashSchedule);
template void flash_attention_backward<double>(const AttentionProblem&, const double*,
                                               const double*, const double*, const double*,
                                               const double*, const double*, double*, double*,
                                               double*, FlashSchedule);

}  // namespace latte::kernels::cpu
