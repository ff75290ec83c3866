// random_expert_ids: seeded expert assignments for MoE kernel tests, top_k distinct experts
// per token.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace latte::test {

// n_tokens rows of top_k distinct ids in [0, n_experts), drawn from a generator seeded by `seed`.
inline std::vector<int32_t> random_expert_ids(int64_t n_tokens, int64_t top_k, int64_t n_experts,
                                              unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> experts(n_experts), ids;
  std::iota(experts.begin(), experts.end(), 0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::shuffle(experts.begin(), experts.end(), rng);
    ids.insert(ids.end(), experts.begin(), experts.begin() + top_k);
  }
  return ids;
}

}  // namespace latte::test
