// DeepSeekMoE router (SPEC §3): router scores from logits (sigmoid or softmax), expert selection
// (greedy, group_limited_greedy, noaux_tc) with the gate weights, and their backward passes.
//
// How it computes, per token (rows are independent, so tokens run in parallel with OpenMP and
// the results do not depend on the thread count):
// - scores: sigmoid elementwise (stable in both tails), or softmax over the E experts after
//   subtracting the row max. Backward uses the saved scores: sigmoid ds·s·(1−s); softmax
//   s·(ds − Σ_j ds_j·s_j).
// - selection: s_sel = s + correction_bias for noaux_tc (nullptr bias = zero), s_sel = s
//   otherwise. The group methods split the E experts into n_group contiguous groups of E/n_group,
//   score each group (group_limited_greedy: max s_sel in it; noaux_tc: sum of its top-2 s_sel, or
//   its single s_sel when a group holds one expert), keep the best topk_group groups and set every
//   other expert's s_sel to −inf; then the top_k experts by s_sel are chosen. Group and expert
//   rankings order by value, descending, and break exact ties by the lower index, so equal scores
//   always give the same choice. The chosen ids of a token are written in that rank order.
// - weights: w_k = s[e_k] (the unbiased score: the bias only chooses); with norm_topk_prob
//   w_k /= (Σ_k s[e_k] + 1e-20); then w_k *= routed_scaling_factor.
// Router math runs in the element type (float or double; callers upcast bf16 activations).
// Backward kernels add into their gradient outputs (callers zero-fill them first), so the
// gradients of the gate weights and of the balance losses (kernels/cpu/moe_balance.h) can be
// summed into one d scores buffer before router_scores_backward.
#pragma once

#include <cstdint>

namespace latte::kernels::cpu {

enum class RouterScoring { kSigmoid, kSoftmax };
enum class RouterTopkMethod { kGreedy, kGroupLimitedGreedy, kNoauxTc };

// How experts are chosen and weighted (SPEC §7 [model.moe] keys of the same names).
// n_group and topk_group are read by the two group methods only.
struct RouterSpec {
  int64_t n_experts = 0;  // E
  int64_t top_k = 0;      // K = num_experts_per_tok
  RouterTopkMethod method = RouterTopkMethod::kGreedy;
  int64_t n_group = 1;
  int64_t topk_group = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
};

// Throws latte::Error naming `op` and the offending values unless 1 <= top_k <= n_experts,
// routed_scaling_factor is finite and, for the group methods, n_group divides n_experts,
// 1 <= topk_group <= n_group and top_k <= topk_group * (n_experts / n_group).
void check_router_spec(const RouterSpec& spec, const char* op);

// scores[N,E] = sigmoid(logits) or softmax(logits) over each row of E.
template <typename T>
void router_scores_forward(const T* logits, int64_t n_tokens, int64_t n_experts,
                           RouterScoring scoring, T* scores);

// dlogits[N,E] += d scores / d logits applied to dscores, from the forward's scores.
template <typename T>
void router_scores_backward(const T* scores, const T* dscores, int64_t n_tokens, int64_t n_experts,
                            RouterScoring scoring, T* dlogits);

// Chooses spec.top_k experts per token from scores[N,E] and writes expert_ids[N,K] (descending
// s_sel, lower index first on ties) and weights[N,K]. correction_bias[E] is read only for
// noaux_tc and may be nullptr (zero bias). The spec must pass check_router_spec.
template <typename T>
void select_experts(const T* scores, const T* correction_bias, int64_t n_tokens,
                    const RouterSpec& spec, int32_t* expert_ids, T* weights);

// dscores[N,E] += d weights / d scores applied to dweights[N,K]: the gradient through the gather
// of s at expert_ids, the normalization (norm_topk_prob) and the scaling factor. The selection
// itself is piecewise constant and has no gradient; the correction bias never receives one.
template <typename T>
void expert_weights_backward(const T* scores, const int32_t* expert_ids, const T* dweights,
                             int64_t n_tokens, const RouterSpec& spec, T* dscores);

}  // namespace latte::kernels::cpu
