// The whole DeepSeek-style language model (SPEC §4): model.embed_tokens → decoder layers →
// model.norm → lm_head (or the tied embedding), plus optional multi-token-prediction modules.
// Input is a batch of token sequences; the next-token loss covers every position but the last.
// Training and evaluation pass windows instead (forward_window): the last token of a window is
// only a target, so the decoder stack never runs on it.
#pragma once

#include <memory>
#include <vector>

#include "models/config.h"
#include "models/decoder.h"
#include "models/forward_context.h"
#include "models/rope_cache.h"

namespace latte {

class MoeLayer;

struct ModelOutput {
  Tensor logits;    // [B, L, vocab] (forward_window: [B, L - 1, vocab])
  Tensor lm_loss;   // mean next-token cross-entropy over positions 0..L-2
  Tensor aux_loss;  // sum of balance losses and the weighted MTP loss (0 when none)
  Tensor loss;      // lm_loss + aux_loss
  Tensor mtp_loss;  // the weighted MTP part of aux_loss (undefined without MTP)
};

// A plain container module (the "model" prefix, the layer list).
class ModuleGroup : public Module {
 public:
  using Module::register_module;
};

// One multi-token-prediction module: a decoder block plus enorm, hnorm, eh_proj and
// shared_head.norm (named model.layers.{L+m}.*).
class MtpLayer : public DecoderLayer {
 public:
  MtpLayer(const ModelConfig& config, int64_t layer_index, const InitContext& init);
  RMSNorm& enorm() { return *enorm_; }
  RMSNorm& hnorm() { return *hnorm_; }
  Linear& eh_proj() { return *eh_proj_; }
  RMSNorm& head_norm() { return *head_norm_; }

 private:
  RMSNorm* enorm_;
  RMSNorm* hnorm_;
  Linear* eh_proj_;
  RMSNorm* head_norm_;
};

class DeepSeekModel : public Module {
 public:
  DeepSeekModel(const ModelConfig& config, uint64_t seed, DType dtype = DType::F32);

  // tokens: i32 [B, L], L >= 2. Logits for every position (SPEC §8).
  ModelOutput forward(const Tensor& tokens, ForwardContext& ctx);
  // A training window: i32 [B, L], L >= 2, whose last token is only a target. The same losses
  // as forward(window) for everything the last position does not feed (the next-token loss;
  // the MTP modules, which see the whole window), with the decoder stack run on the L - 1
  // positions that have targets: a window of seq_len + 1 tokens runs seq_len rows through the
  // layers (1024, not 1025: no attention tile or GEMM row block holding one row). MoE routing
  // statistics and balance losses cover those L - 1 tokens.
  ModelOutput forward_window(const Tensor& window, ForwardContext& ctx);

  const ModelConfig& config() const { return config_; }
  DType dtype() const { return dtype_; }
  // The dtype activations run in (default: the parameters' dtype). BF16 gives mixed precision:
  // layers cast the fp32 parameters to bf16 on the way in (the casts are kept as compute copies
  // that AdamW refreshes, Tensor::to), gradients reach the fp32 masters.
  void set_compute_dtype(DType dtype) { compute_dtype_ = dtype; }
  DType compute_dtype() const { return compute_dtype_; }
  std::vector<MoeLayer*> moe_layers();

 private:
  Tensor logits_of(const Tensor& hidden) const;
  // forward over tokens [B, L] with the decoder stack on the first `positions` (L or L - 1).
  ModelOutput forward_positions(const Tensor& tokens, int64_t positions, ForwardContext& ctx);

  ModelConfig config_;
  DType dtype_;
  DType compute_dtype_;
  Embedding* embed_;
  std::vector<DecoderLayer*> layers_;
  std::vector<MtpLayer*> mtp_;
  RMSNorm* norm_;
  Linear* lm_head_ = nullptr;  // nullptr when tied to the embedding
  RopeCache rope_;
};

}  // namespace latte
