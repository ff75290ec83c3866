#include "kernels/cpu/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "engine/error.h"

namespace latte::kernels::cpu {

namespace {

// Added to the sum of the chosen scores before dividing by it (SPEC §3).
constexpr double kNormEpsilon = 1e-20;

bool is_group_method(RouterTopkMethod method) {
  return method == RouterTopkMethod::kGroupLimitedGreedy || method == RouterTopkMethod::kNoauxTc;
}

template <typename T>
T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// Sorts the first k entries of `order` into the k best indices of `value`: larger value first,
// the lower index first among equal values.
template <typename T>
void top_indices(const T* value, std::vector<int64_t>& order, int64_t k) {
  std::iota(order.begin(), order.end(), int64_t{0});
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [value](int64_t a, int64_t b) {
    return value[a] > value[b] || (value[a] == value[b] && a < b);
  });
}

// Group score of one group of s_sel values: the max (group_limited_greedy) or the sum of the two
// largest (noaux_tc; the single value when the group holds one expert).
template <typename T>
T group_score(const T* sel, int64_t size, RouterTopkMethod method) {
  T first = -std::numeric_limits<T>::infinity();
  T second = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < size; ++j) {
    if (sel[j] > first) {
      second = first;
      first = sel[j];
    } else if (sel[j] > second) {
      second = sel[j];
    }
  }
  if (method == RouterTopkMethod::kGroupLimitedGreedy || size == 1) return first;
  return first + second;
}

}  // namespace

void check_router_spec(const RouterSpec& spec, const char* op) {
  LATTE_CHECK(spec.n_experts >= 1)
      << op << ": n_routed_experts must be >= 1, got " << spec.n_experts;
  LATTE_CHECK(spec.top_k >= 1 && spec.top_k <= spec.n_experts)
      << op << ": num_experts_per_tok must be in [1, n_routed_experts = " << spec.n_experts
      << "], got " << spec.top_k;
  LATTE_CHECK(std::isfinite(spec.routed_scaling_factor))
      << op << ": routed_scaling_factor must be finite, got " << spec.routed_scaling_factor;
  if (!is_group_method(spec.method)) return;
  LATTE_CHECK(spec.n_group >= 1 && spec.n_experts % spec.n_group == 0)
      << op << ": n_group must be >= 1 and divide n_routed_experts = " << spec.n_experts << ", got "
      << spec.n_group;
  LATTE_CHECK(spec.topk_group >= 1 && spec.topk_group <= spec.n_group)
      << op << ": topk_group must be in [1, n_group = " << spec.n_group << "], got "
      << spec.topk_group;
  const int64_t reachable = spec.topk_group * (spec.n_experts / spec.n_group);
  LATTE_CHECK(spec.top_k <= reachable)
      << op << ": num_experts_per_tok = " << spec.top_k << " exceeds the " << reachable
      << " experts in topk_group = " << spec.topk_group << " groups of "
      << spec.n_experts / spec.n_group;
}

template <typename T>
void router_scores_forward(const T* logits, int64_t n_tokens, int64_t n_experts,
                           RouterScoring scoring, T* scores) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const T* x = logits + t * n_experts;
    T* s = scores + t * n_experts;
    if (scoring == RouterScoring::kSigmoid) {
      for (int64_t e = 0; e < n_experts; ++e) s[e] = stable_sigmoid(x[e]);
      continue;
    }
    T max = x[0];
    for (int64_t e = 1; e < n_experts; ++e) max = std::max(max, x[e]);
    T sum = 0;
    for (int64_t e = 0; e < n_experts; ++e) {
      s[e] = std::exp(x[e] - max);
      sum += s[e];
    }
    for (int64_t e = 0; e < n_experts; ++e) s[e] /= sum;
  }
}

template <typename T>
void router_scores_backward(const T* scores, const T* dscores, int64_t n_tokens, int64_t n_experts,
                            RouterScoring scoring, T* dlogits) {
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const T* s = scores + t * n_experts;
    const T* ds = dscores + t * n_experts;
    T* dx = dlogits + t * n_experts;
    if (scoring == RouterScoring::kSigmoid) {
      for (int64_t e = 0; e < n_experts; ++e) dx[e] += ds[e] * s[e] * (T(1) - s[e]);
      continue;
    }
    T dot = 0;
    for (int64_t e = 0; e < n_experts; ++e) dot += ds[e] * s[e];
    for (int64_t e = 0; e < n_experts; ++e) dx[e] += s[e] * (ds[e] - dot);
  }
}

template <typename T>
void select_experts(const T* scores, const T* correction_bias, int64_t n_tokens,
                    const RouterSpec& spec, int32_t* expert_ids, T* weights) {
  const int64_t n_experts = spec.n_experts;
  const int64_t top_k = spec.top_k;
  const bool use_bias = spec.method == RouterTopkMethod::kNoauxTc && correction_bias != nullptr;
  const bool use_groups = is_group_method(spec.method) && spec.topk_group < spec.n_group;
  const int64_t n_group = use_groups ? spec.n_group : 1;
  const int64_t group_size = n_experts / n_group;
  const T scale = static_cast<T>(spec.routed_scaling_factor);
#pragma omp parallel
  {
    std::vector<T> sel(n_experts);
    std::vector<int64_t> expert_order(n_experts);
    std::vector<T> group_scores(n_group);
    std::vector<int64_t> group_order(n_group);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n_tokens; ++t) {
      const T* s = scores + t * n_experts;
      for (int64_t e = 0; e < n_experts; ++e) sel[e] = use_bias ? s[e] + correction_bias[e] : s[e];
      if (use_groups) {
        for (int64_t g = 0; g < n_group; ++g)
          group_scores[g] = group_score(sel.data() + g * group_size, group_size, spec.method);
        top_indices(group_scores.data(), group_order, spec.topk_group);
        for (int64_t r = spec.topk_group; r < n_group; ++r) {
          T* masked = sel.data() + group_order[r] * group_size;
          std::fill(masked, masked + group_size, -std::numeric_limits<T>::infinity());
        }
      }
      top_indices(sel.data(), expert_order, top_k);
      int32_t* ids = expert_ids + t * top_k;
      T* w = weights + t * top_k;
      T sum = 0;
      for (int64_t k = 0; k < top_k; ++k) {
        ids[k] = static_cast<int32_t>(expert_order[k]);
        w[k] = s[expert_order[k]];
        sum += w[k];
      }
      const T denom = spec.norm_topk_prob ? sum + static_cast<T>(kNormEpsilon) : T(1);
      for (int64_t k = 0; k < top_k; ++k) w[k] = w[k] / denom * scale;
    }
  }
}

template <typename T>
void expert_weights_backward(const T* scores, const int32_t* expert_ids, const T* dweights,
                             int64_t n_tokens, const RouterSpec& spec, T* dscores) {
  const int64_t n_experts = spec.n_experts;
  const int64_t top_k = spec.top_k;
  const T scale = static_cast<T>(spec.routed_scaling_factor);
#pragma omp parallel for schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    const T* s = scores + t * n_experts;
    const int32_t* ids = expert_ids + t * top_k;
    const T* dw = dweights + t * top_k;
    T* ds = dscores + t * n_experts;
    if (!spec.norm_topk_prob) {
      for (int64_t k = 0; k < top_k; ++k) ds[ids[k]] += scale * dw[k];
      continue;
    }
    // w_k = c·s_k/D with D = Σ_j s_j + eps, so dL/ds_m = (c/D)·(dw_m − Σ_k dw_k·s_k/D).
    T sum = 0;
    for (int64_t k = 0; k < top_k; ++k) sum += s[ids[k]];
    const T denom = sum + static_cast<T>(kNormEpsilon);
    T dot = 0;
    for (int64_t k = 0; k < top_k; ++k) dot += dw[k] * s[ids[k]];
    const T shared = dot / denom;
    for (int64_t k = 0; k < top_k; ++k) ds[ids[k]] += scale / denom * (dw[k] - shared);
  }
}

#define LATTE_MOE_ROUTING(T)                                                                     \
  template void router_scores_forward<T>(const T*, int64_t, int64_t, RouterScoring, T*);         \
  template void router_scores_backward<T>(const T*, const T*, int64_t, int64_t, RouterScoring,   \
                                          T*);                                                   \
  template void select_experts<T>(const T*, const T*, int64_t, const RouterSpec&, int32_t*, T*); \
  template void expert_weights_backward<T>(const T*, const int32_t*, const T*, int64_t,          \
                                           const RouterSpec&, T*);
LATTE_MOE_ROUTING(float)
LATTE_MOE_ROUTING(double)
#undef LATTE_MOE_ROUTING

}  // namespace latte::kernels::cpu
