// RoPE frequency math of SPEC §2 as pure functions of the [model.rope] config: the inverse
// frequencies of every scaling type (default, linear, dynamic NTK, YaRN, llama3), the YaRN
// attention factor on cos/sin, MLA's softmax scale, and the cos/sin tables the rope kernels
// (kernels/cpu/rope.h) read.
#pragma once

#include <cstdint>
#include <vector>

#include "models/config.h"

namespace latte {

// inv_freq[i] for i in [0, dim/2) after the config's scaling. seq_len is the length the
// frequencies serve; only dynamic scaling uses it (rescaling theta when it exceeds
// max_position_embeddings).
std::vector<double> rope_inv_freq(const RopeConfig& rope, int64_t dim, int64_t seq_len,
                                  int64_t max_position_embeddings);

// YaRN's mscale(s, m): 1 when s <= 1, else 0.1 m ln(s) + 1.
double yarn_mscale(double scale, double mscale);

// The factor multiplying cos and sin: mscale(factor, mscale) / mscale(factor, mscale_all_dim) for
// yarn with mscale_all_dim > 0, mscale(factor, 1) for yarn otherwise, 1 for the other types.
double rope_attention_factor(const RopeConfig& rope);

// qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2 for yarn with mscale_all_dim > 0.
double mla_softmax_scale(const RopeConfig& rope, int64_t qk_head_dim);

// cos and sin of position t times inv_freq[i], times rope_attention_factor, as [length, dim/2]
// row-major tables (row t serves position t).
struct RopeTables {
  int64_t dim = 0, length = 0;
  std::vector<double> cos, sin;
};

// Tables for positions [0, length); dynamic scaling sees seq_len = length.
RopeTables make_rope_tables(const RopeConfig& rope, int64_t dim, int64_t length,
                            int64_t max_position_embeddings);

}  // namespace latte
