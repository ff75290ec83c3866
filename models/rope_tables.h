// RoPE frequency math of SPEC §2 as pure functions of the config: inverse frequencies for the
// default, linear, dynamic (NTK), yarn and llama3 types, the yarn attention factor on cos/sin,
// MLA's softmax scale with the yarn mscale² correction, and the cos/sin tables (in double).
#pragma once

#include <cstdint>
#include <vector>

#include "models/config.h"

namespace latte {

// mscale(s, m) = 1 if s <= 1 else 0.1·m·ln(s) + 1.
double yarn_mscale(double scale, double mscale);

// inv_freq[i], i in [0, dim/2). `seq_len` matters only for dynamic NTK (compared with
// max_position_embeddings).
std::vector<double> rope_inv_freq(const RopeConfig& rope, int64_t dim, int64_t seq_len,
                                  int64_t max_position_embeddings);

// The factor multiplying cos and sin: yarn's mscale ratio, 1 for the other types.
double rope_attention_factor(const RopeConfig& rope);

// qk_head_dim^-0.5, times mscale(factor, mscale_all_dim)² for yarn with mscale_all_dim > 0.
double mla_softmax_scale(const RopeConfig& rope, int64_t qk_head_dim);

struct RopeTables {
  int64_t dim = 0, length = 0;
  std::vector<double> cos, sin;  // [length, dim/2], attention factor folded in
};

// Tables for positions [0, length); dynamic NTK uses length as the sequence length.
RopeTables make_rope_tables(const RopeConfig& rope, int64_t dim, int64_t length,
                            int64_t max_position_embeddings);

}  // namespace latte
