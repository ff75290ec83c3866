// The SwiGLU feed-forward block of DeepSeek: down_proj(silu(gate_proj(x)) * up_proj(x)).
#pragma once

#include "models/feed_forward.h"
#include "models/layers.h"

namespace latte {

class SwiGluMlp : public FeedForward {
 public:
  SwiGluMlp(int64_t hidden, int64_t intermediate, const InitContext& init);
  Tensor forward(const Tensor& x) const;
  Tensor forward(const Tensor& x, ForwardContext&) override { return forward(x); }
  const Linear& gate_proj() const { return gate_proj_; }
  const Linear& up_proj() const { return up_proj_; }
  const Linear& down_proj() const { return down_proj_; }

 private:
  Linear& gate_proj_;
  Linear& up_proj_;
  Linear& down_proj_;
};

}  // namespace latte
