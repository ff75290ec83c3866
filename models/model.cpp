#include "models/model.h"

#include "engine/ops.h"
#include "models/moe.h"

namespace latte {

MtpLayer::MtpLayer(const ModelConfig& config, int64_t layer_index, const InitContext& init)
    : DecoderLayer(config, layer_index, init) {
  const int64_t d = config.hidden_size;
  const double eps = config.rms_norm_eps;
  enorm_ = &register_module("enorm", std::make_unique<RMSNorm>(d, eps, init));
  hnorm_ = &register_module("hnorm", std::make_unique<RMSNorm>(d, eps, init));
  eh_proj_ = &register_module("eh_proj", std::make_unique<Linear>(2 * d, d, false, init));
  auto head = std::make_unique<ModuleGroup>();
  head_norm_ = &head->register_module("norm", std::make_unique<RMSNorm>(d, eps, init));
  register_module("shared_head", std::move(head));
}

DeepSeekModel::DeepSeekModel(const ModelConfig& config, uint64_t seed, DType dtype)
    : config_(config),
      dtype_(dtype),
      compute_dtype_(dtype),
      rope_(config.rope, rope_dim(config.attention), config.max_position_embeddings, dtype) {
  Generator gen(seed);
  const InitContext init{&gen, config.initializer_range, dtype};
  auto model = std::make_unique<ModuleGroup>();
  embed_ = &model->register_module(
      "embed_tokens", std::make_unique<Embedding>(config.vocab_size, config.hidden_size, init));
  auto layers = std::make_unique<ModuleGroup>();
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    layers_.push_back(&layers->register_module(std::to_string(l),
                                               std::make_unique<DecoderLayer>(config, l, init)));
  for (int64_t m = 0; m < config.mtp.num_layers; ++m) {
    const int64_t index = config.num_hidden_layers + m;
    mtp_.push_back(&layers->register_module(std::to_string(index),
                                            std::make_unique<MtpLayer>(config, index, init)));
  }
  norm_ = &model->register_module(
      "norm", std::make_unique<RMSNorm>(config.hidden_size, config.rms_norm_eps, init));
  model->register_module("layers", std::move(layers));
  register_module("model", std::move(model));
  if (!config.tie_word_embeddings)
    lm_head_ = &register_module(
        "lm_head", std::make_unique<Linear>(config.hidden_size, config.vocab_size, false, init));
}

Tensor DeepSeekModel::logits_of(const Tensor& hidden) const {
  return lm_head_ ? lm_head_->forward(hidden) : ops::linear(hidden, embed_->weight());
}

ModelOutput DeepSeekModel::forward(const Tensor& tokens, ForwardContext& ctx) {
  LATTE_CHECK(tokens.dtype() == DType::I32 && tokens.dim() == 2 && tokens.size(1) >= 2)
      << "model forward: tokens must be i32 [batch, length >= 2], got " << tokens.describe();
  return forward_positions(tokens, tokens.size(1), ctx);
}

ModelOutput DeepSeekModel::forward_window(const Tensor& window, ForwardContext& ctx) {
  LATTE_CHECK(window.dtype() == DType::I32 && window.dim() == 2 && window.size(1) >= 2)
      << "model forward_window: window must be i32 [batch, length >= 2], got " << window.describe();
  return forward_positions(window, window.size(1) - 1, ctx);
}

ModelOutput DeepSeekModel::forward_positions(const Tensor& tokens, int64_t positions,
                                             ForwardContext& ctx) {
  const int64_t B = tokens.size(0), L = tokens.size(1);
  const Tensor inputs = positions == L ? tokens : tokens.narrow(1, 0, positions).contiguous();
  Tensor h = embed_->forward(inputs, compute_dtype_);
  for (DecoderLayer* layer : layers_) h = layer->forward(h, rope_, ctx);

  ModelOutput out;
  out.logits = logits_of(norm_->forward(h));
  // Next-token targets: position i predicts tokens[i + 1]; a position at the end of `tokens`
  // predicts nothing (its target is ignored by the loss).
  const auto then_nothing = [&](const Tensor& next_tokens) {
    return ops::concat({next_tokens, Tensor::full({B, 1}, -100, DType::I32, tokens.device())}, 1);
  };
  const Tensor targets =
      positions == L ? then_nothing(tokens.narrow(1, 1, L - 1)) : tokens.narrow(1, 1, positions);
  out.lm_loss = ops::cross_entropy(out.logits, targets);

  // MTP module m over positions i < L - m - 1: combines h_i (the previous depth) with the
  // embedding of token i + m + 1 and predicts token i + m + 2.
  const double mtp_weight =
      config_.mtp.num_layers > 0
          ? config_.mtp.loss_weight / static_cast<double>(config_.mtp.num_layers)
          : 0.0;
  Tensor mtp_total;
  Tensor prev = h;
  for (size_t m = 0; m < mtp_.size(); ++m) {
    const int64_t n = L - static_cast<int64_t>(m) - 1;
    if (n < 2) break;  // no position has a target this deep
    MtpLayer& mtp = *mtp_[m];
    const Tensor e = embed_->forward(tokens.narrow(1, m + 1, n).contiguous(), compute_dtype_);
    const Tensor x = mtp.eh_proj().forward(
        ops::concat({mtp.enorm().forward(e), mtp.hnorm().forward(prev.narrow(1, 0, n))}, 2));
    prev = mtp.forward(x, rope_, ctx);
    const Tensor mtp_targets = then_nothing(tokens.narrow(1, m + 2, n - 1));
    const Tensor loss = ops::scale(
        ops::cross_entropy(logits_of(mtp.head_norm().forward(prev)), mtp_targets), mtp_weight);
    mtp_total = mtp_total.defined() ? ops::add(mtp_total, loss) : loss;
  }
  if (mtp_total.defined()) {
    out.mtp_loss = mtp_total.detach();
    ctx.aux_losses.push_back(mtp_total);
  }

  Tensor aux;
  for (const Tensor& a : ctx.aux_losses) aux = aux.defined() ? ops::add(aux, a) : a;
  out.aux_loss = aux.defined() ? aux : Tensor::scalar(0.0, out.lm_loss.dtype(), tokens.device());
  out.loss = aux.defined() ? ops::add(out.lm_loss, aux) : out.lm_loss;
  return out;
}

std::vector<MoeLayer*> DeepSeekModel::moe_layers() {
  std::vector<MoeLayer*> out;
  for (DecoderLayer* layer : layers_)
    if (auto* moe = dynamic_cast<MoeLayer*>(&layer->mlp())) out.push_back(moe);
  for (MtpLayer* layer : mtp_)
    if (auto* moe = dynamic_cast<MoeLayer*>(&layer->mlp())) out.push_back(moe);
  return out;
}

}  // namespace latte
