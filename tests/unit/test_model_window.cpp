// DeepSeekModel::forward_window against forward on the same window: the decoder stack skips the
// window's last position, which only serves as a target, and nothing that position does not
// feed may change. In float64 the two paths run the same arithmetic on the same rows (causal
// attention: no row reads a later one), so losses, logits and gradients agree to rounding
// (1e-12 relative); the MoE statistics count the positions each path routed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "models/model.h"
#include "support/error_text.h"
#include "support/tiny_configs.h"

using namespace latte;

namespace {

// tiny_mla with 2 layers and 2 MTP modules.
ModelConfig tiny_mla_with_mtp() {
  ModelConfig c = test::tiny_mla();
  c.num_hidden_layers = 2;
  c.mtp.num_layers = 2;
  c.mtp.loss_weight = 0.3;
  return c;
}

// Windows [3, 12] of token ids in [0, vocab).
Tensor windows(int64_t vocab) {
  std::vector<int32_t> ids(3 * 12);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7 + i / 5) % vocab);
  return Tensor::from_vector(ids, {3, 12});
}

double relative_difference(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  REQUIRE(x.size() == y.size());
  double scale = 0, worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    scale = std::max(scale, std::abs(y[i]));
    worst = std::max(worst, std::abs(x[i] - y[i]));
  }
  return scale > 0 ? worst / scale : worst;
}

// The loss's gradient for every parameter, by name.
std::map<std::string, Tensor> gradients(DeepSeekModel& model, const Tensor& loss) {
  model.zero_grad();
  loss.backward();
  std::map<std::string, Tensor> out;
  for (auto& [name, p] : model.named_parameters())
    if (p.grad().defined()) out[name] = p.grad().clone();
  return out;
}

}  // namespace

TEST_CASE(
    "forward_window equals forward on a window, without running the stack on its last "
    "token") {
  DeepSeekModel model(tiny_mla_with_mtp(), 7, DType::F64);
  const Tensor w = windows(32);

  ForwardContext full_ctx, window_ctx;
  const ModelOutput full = model.forward(w, full_ctx);
  const auto full_grads = gradients(model, full.loss);
  const ModelOutput win = model.forward_window(w, window_ctx);
  const auto window_grads = gradients(model, win.loss);

  CHECK(win.logits.shape() == Shape{3, 11, 32});
  CHECK(relative_difference(win.logits, full.logits.narrow(1, 0, 11)) < 1e-12);
  CHECK(std::abs(win.lm_loss.item() - full.lm_loss.item()) < 1e-12 * full.lm_loss.item());
  REQUIRE(win.mtp_loss.defined());
  CHECK(std::abs(win.mtp_loss.item() - full.mtp_loss.item()) < 1e-12 * full.mtp_loss.item());
  CHECK(std::abs(win.loss.item() - full.loss.item()) < 1e-12 * full.loss.item());

  REQUIRE(window_grads.size() == full_grads.size());
  for (const auto& [name, g] : full_grads) {
    INFO(name);
    REQUIRE(window_grads.count(name) == 1);
    CHECK(relative_difference(window_grads.at(name), g) < 1e-12);
  }
}

TEST_CASE("forward_window routes the positions it runs: MoE statistics cover L - 1 tokens") {
  ModelConfig c = tiny_mla_with_mtp();
  c.mtp.num_layers = 0;
  c.moe = test::tiny_moe(0, 0, 1);
  DeepSeekModel model(c, 11, DType::F64);
  const Tensor w = windows(32);

  ForwardContext full_ctx, window_ctx;
  const ModelOutput full = model.forward(w, full_ctx);
  const ModelOutput win = model.forward_window(w, window_ctx);
  // Dropless top-k routing of a token does not depend on the other tokens: the positions both
  // paths run get the same logits, and so the same next-token loss.
  CHECK(std::abs(win.lm_loss.item() - full.lm_loss.item()) < 1e-12 * full.lm_loss.item());
  REQUIRE(window_ctx.moe_stats.size() == 2);
  REQUIRE(full_ctx.moe_stats.size() == 2);
  for (size_t l = 0; l < 2; ++l) {
    const auto count = [](const MoeLayerStats& s) {
      int64_t n = 0;
      for (int64_t v : s.tokens_per_expert) n += v;
      return n;
    };
    CHECK(count(window_ctx.moe_stats[l]) == 3 * 11 * 2);
    CHECK(count(full_ctx.moe_stats[l]) == 3 * 12 * 2);
  }
}

TEST_CASE("forward_window needs a window of at least two tokens") {
  DeepSeekModel model(tiny_mla_with_mtp(), 7, DType::F64);
  ForwardContext ctx;
  const Tensor one = Tensor::from_vector(std::vector<int32_t>{1, 2}, {2, 1});
  CHECK_CONTAINS(test::error_of([&] { model.forward_window(one, ctx); }),
                 "model forward_window: window must be i32 [batch, length >= 2]");
}
