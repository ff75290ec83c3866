#include "kernels/cpu/moe_balance.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/error.h"

namespace latte::kernels::cpu {

namespace {

// Coefficients C[b, i] = α·E·c_{b,i}/(B·K·T²) of the balance loss L = Σ_t Σ_i C[b(t), i]·p_{i,t},
// where c_{b,i} counts the top-k slots of sequence b that chose expert i.
std::vector<double> balance_coefficients(const int32_t* expert_ids, int64_t n_seqs, int64_t seq_len,
                                         int64_t n_experts, int64_t top_k, double alpha) {
  std::vector<double> coef(n_seqs * n_experts, 0.0);
  const double unit = alpha * static_cast<double>(n_experts) /
                      (static_cast<double>(n_seqs) * static_cast<double>(top_k) *
                       static_cast<double>(seq_len) * static_cast<double>(seq_len));
  for (int64_t b = 0; b < n_seqs; ++b) {
    const int32_t* ids = expert_ids + b * seq_len * top_k;
    double* c = coef.data() + b * n_experts;
    for (int64_t a = 0; a < seq_len * top_k; ++a) c[ids[a]] += unit;
  }
  return coef;
}

template <typename T>
T balance_loss_forward(const T* scores, const int32_t* expert_ids, int64_t n_seqs, int64_t seq_len,
                       int64_t n_experts, int64_t top_k, T alpha) {
  const std::vector<double> coef =
      balance_coefficients(expert_ids, n_seqs, seq_len, n_experts, top_k, alpha);
  const int64_t n_tokens = n_seqs * seq_len;
  std::vector<double> per_token(n_tokens);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const T* s = scores + t * n_experts;
    const double* c = coef.data() + (t / seq_len) * n_experts;
    double z = 0, weighted = 0;
    for (int64_t i = 0; i < n_experts; ++i) {
      z += s[i];
      weighted += c[i] * s[i];
    }
    per_token[t] = weighted / z;
  }
  double loss = 0;
  for (double v : per_token) loss += v;
  return static_cast<T>(loss);
}

template <typename T>
void balance_loss_backward(const T* scores, const int32_t* expert_ids, int64_t n_seqs,
                           int64_t seq_len, int64_t n_experts, int64_t top_k, T alpha, T dloss,
                           T* dscores) {
  const std::vector<double> coef =
      balance_coefficients(expert_ids, n_seqs, seq_len, n_experts, top_k, alpha);
  const int64_t n_tokens = n_seqs * seq_len;
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const T* s = scores + t * n_experts;
    const double* c = coef.data() + (t / seq_len) * n_experts;
    T* ds = dscores + t * n_experts;
    double z = 0, weighted = 0;
    for (int64_t i = 0; i < n_experts; ++i) {
      z += s[i];
      weighted += c[i] * s[i];
    }
    const double shared = weighted / (z * z);
    for (int64_t i = 0; i < n_experts; ++i)
      ds[i] += static_cast<T>(static_cast<double>(dloss) * (c[i] / z - shared));
  }
}

}  // namespace

template <typename T>
T seq_aux_loss_forward(const T* scores, const int32_t* expert_ids, int64_t n_seqs, int64_t seq_len,
                       int64_t n_experts, int64_t top_k, T alpha) {
  return balance_loss_forward(scores, expert_ids, n_seqs, seq_len, n_experts, top_k, alpha);
}

template <typename T>
void seq_aux_loss_backward(const T* scores, const int32_t* expert_ids, int64_t n_seqs,
                           int64_t seq_len, int64_t n_experts, int64_t top_k, T alpha, T dloss,
                           T* dscores) {
  balance_loss_backward(scores, expert_ids, n_seqs, seq_len, n_experts, top_k, alpha, dloss,
                        dscores);
}

template <typename T>
T switch_aux_loss_forward(const T* scores, const int32_t* expert_ids, int64_t n_tokens,
                          int64_t n_experts, int64_t top_k, T alpha) {
  return balance_loss_forward(scores, expert_ids, 1, n_tokens, n_experts, top_k, alpha);
}

template <typename T>
void switch_aux_loss_backward(const T* scores, const int32_t* expert_ids, int64_t n_tokens,
                              int64_t n_experts, int64_t top_k, T alpha, T dloss, T* dscores) {
  balance_loss_backward(scores, expert_ids, 1, n_tokens, n_experts, top_k, alpha, dloss, dscores);
}

void count_expert_load(const int32_t* expert_ids, int64_t n_assignments, int64_t n_experts,
                       int64_t* load) {
  for (int64_t a = 0; a < n_assignments; ++a) {
    const int32_t e = expert_ids[a];
    LATTE_CHECK(e >= 0 && e < n_experts)
        << "moe count_expert_load: expert id " << e << " at assignment " << a << " is outside [0, "
        << n_experts << ")";
    ++load[e];
  }
}

LoadStatistics load_statistics(const int64_t* load, int64_t n_experts) {
  LoadStatistics stats;
  if (n_experts <= 0) return stats;
  stats.min = *std::min_element(load, load + n_experts);
  stats.max = *std::max_element(load, load + n_experts);
  for (int64_t i = 0; i < n_experts; ++i) stats.total += load[i];
  stats.mean = static_cast<double>(stats.total) / static_cast<double>(n_experts);
  if (stats.total == 0) return stats;
  double squares = 0;
  for (int64_t i = 0; i < n_experts; ++i) {
    const double d = static_cast<double>(load[i]) - stats.mean;
    squares += d * d;
  }
  stats.max_over_mean = static_cast<double>(stats.max) / stats.mean;
  stats.coefficient_of_variation = std::sqrt(squares / static_cast<double>(n_experts)) / stats.mean;
  return stats;
}

template <typename T>
void update_correction_bias(T* bias, const int64_t* load, int64_t n_experts, T gamma) {
  int64_t total = 0;
  for (int64_t i = 0; i < n_experts; ++i) total += load[i];
  for (int64_t i = 0; i < n_experts; ++i) {
    const int64_t diff = total - n_experts * load[i];  // E·(mean − load_i)
    bias[i] += diff > 0 ? gamma : diff < 0 ? -gamma : T(0);
  }
}

#define LATTE_MOE_BALANCE(T)                                                                       \
  template T seq_aux_loss_forward<T>(const T*, const int32_t*, int64_t, int64_t, int64_t, int64_t, \
                                     T);                                                           \
  template void seq_aux_loss_backward<T>(const T*, const int32_t*, int64_t, int64_t, int64_t,      \
                                         int64_t, T, T, T*);                                       \
  template T switch_aux_loss_forward<T>(const T*, const int32_t*, int64_t, int64_t, int64_t, T);   \
  template void switch_aux_loss_backward<T>(const T*, const int32_t*, int64_t, int64_t, int64_t,   \
                                            T, T, T*);                                             \
  template void update_correction_bias<T>(T*, const int64_t*, int64_t, T);
LATTE_MOE_BALANCE(float)
LATTE_MOE_BALANCE(double)
#undef LATTE_MOE_BALANCE

}  // namespace latte::kernels::cpu
