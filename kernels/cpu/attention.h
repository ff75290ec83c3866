// The description of one scaled-dot-product attention problem shared by the attention kernels
// (naive and flash, CPU and CUDA): sizes, softmax scale, causal flag and the element strides of
// the q, k, v and o operands, plus the causal visibility rule and a validation helper for callers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/error.h"

namespace latte::kernels::cpu {

// Element strides of a [batch, tokens, heads, dim] operand whose last dimension is contiguous.
struct AttentionLayout {
  int64_t batch_stride = 0, token_stride = 0, head_stride = 0;
};

// The layout of a densely packed [batch, tokens, heads, dim] operand.
inline AttentionLayout packed_attention_layout(int64_t tokens, int64_t heads, int64_t dim) {
  return {tokens * heads * dim, heads * dim, dim};
}

// softmax(scale * q k^T [+ causal mask]) v for every batch and query head.
// Query head h reads kv head h / (q_heads / kv_heads) (grouped-query attention when kv_heads is
// smaller). q and k have qk_dim elements per head, v and o have v_dim. Gradients dq/dk/dv/d_o use
// the layouts of q/k/v/o.
struct AttentionProblem {
  int64_t batch = 0, q_heads = 0, kv_heads = 0;
  int64_t q_len = 0, kv_len = 0, qk_dim = 0, v_dim = 0;
  double scale = 1.0;   // softmax scale applied to q.k
  bool causal = false;  // query i attends keys j <= i + (kv_len - q_len)
  AttentionLayout q, k, v, o;

  int64_t group_size() const { return q_heads / kv_heads; }
  // Query i attends keys [0, visible_keys(i)); 0 when a causal row sees no key (q_len > kv_len).
  int64_t visible_keys(int64_t i) const {
    return causal ? std::clamp<int64_t>(i + kv_len - q_len + 1, 0, kv_len) : kv_len;
  }
  // The first query that attends key j (q_len when none does).
  int64_t first_query_seeing(int64_t j) const {
    return causal ? std::clamp<int64_t>(j - (kv_len - q_len), 0, q_len) : 0;
  }
};

// Throws latte::Error naming `op` when the sizes are not a valid problem or a layout's rows
// overlap (token_stride < dim with more than one token). Kernels assume a checked problem.
inline void check_attention_problem(const AttentionProblem& p, const char* op) {
  LATTE_CHECK(p.batch > 0 && p.q_heads > 0 && p.kv_heads > 0 && p.q_len > 0 && p.kv_len > 0 &&
              p.qk_dim > 0 && p.v_dim > 0)
      << op << ": sizes must be positive, got batch " << p.batch << ", q_heads " << p.q_heads
      << ", kv_heads " << p.kv_heads << ", q_len " << p.q_len << ", kv_len " << p.kv_len
      << ", qk_dim " << p.qk_dim << ", v_dim " << p.v_dim;
  LATTE_CHECK(p.q_heads % p.kv_heads == 0)
      << op << ": q_heads " << p.q_heads << " is not a multiple of kv_heads " << p.kv_heads;
  LATTE_CHECK(std::isfinite(p.scale)) << op << ": softmax scale " << p.scale << " is not finite";
  struct Operand {
    const char* name;
    const AttentionLayout& layout;
    int64_t tokens, dim;
  };
  for (const Operand& x :
       {Operand{"q", p.q, p.q_len, p.qk_dim}, Operand{"k", p.k, p.kv_len, p.qk_dim},
        Operand{"v", p.v, p.kv_len, p.v_dim}, Operand{"o", p.o, p.q_len, p.v_dim}})
    LATTE_CHECK(x.tokens == 1 || x.layout.token_stride >= x.dim)
        << op << ": " << x.name << " token_stride " << x.layout.token_stride
        << " is smaller than its head dim " << x.dim;
}

}  // namespace latte::kernels::cpu
