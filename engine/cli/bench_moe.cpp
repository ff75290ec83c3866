// Benchmark: one DeepSeekMoE layer's forward+backward on the CPU (2048 tokens, d 512, 8 routed
// experts top-2 of width 512, no shared expert, f32, the seed's softmax router with router noise
// and the Switch loss) against the same FLOPs done as one dense SwiGLU MLP of the equal active
// width 2·512 over the same tokens. Both losses are Σ y ⊙ dy (+ the balance loss for the MoE).
// The two run alternately. Prints both times, the ratio (target: MoE within 1.5x of dense), the
// expert load balance and where the MoE pass spends its time (profiler categories).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "engine/cli/bench.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/profiler.h"
#include "engine/random.h"
#include "models/mlp.h"
#include "models/moe.h"

namespace latte::cli {

namespace {

Timing summarize(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

// Best and median wall time of `a` and `b`, run alternately after one warm-up each, so that load
// changes on a shared machine hit both alike.
std::pair<Timing, Timing> time_alternating(const std::function<void()>& a,
                                           const std::function<void()>& b, int repeats) {
  a();
  b();
  std::vector<double> ta, tb;
  auto seconds = [](const std::function<void()>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int i = 0; i < std::max(repeats, 1); ++i) {
    ta.push_back(seconds(a));
    tb.push_back(seconds(b));
  }
  return {summarize(ta), summarize(tb)};
}

}  // namespace

void bench_moe(const BenchOptions& options) {
  LATTE_CHECK(options.device == "cpu") << "bench moe: only --device cpu is implemented";
  const int64_t B = options.quick ? 1 : 4, T = 512, d = 512, E = 8, K = 2, width = 512;
  const int64_t N = B * T;
  MoeConfig config;
  config.n_routed_experts = E;
  config.num_experts_per_tok = K;
  config.n_shared_experts = 0;
  config.moe_intermediate_size = width;
  config.scoring_func = ScoringFunc::kSoftmax;
  config.topk_method = TopkMethod::kGreedy;
  config.norm_topk_prob = false;
  config.aux_loss_alpha = 0.01;
  config.router_noise_std = 0.1;

  Generator gen(1);
  const InitContext init{&gen, 0.02, DType::F32};
  MoeLayer moe(d, config, "mlp", init);
  SwiGluMlp dense(d, K * width, init);
  Tensor x = randn({B, T, d}, gen);
  x.set_requires_grad(true);
  const Tensor dy = randn({B, T, d}, gen);
  Generator noise(2);

  std::vector<int64_t> load(E, 0);
  auto moe_step = [&] {
    x.zero_grad();
    moe.zero_grad();
    ForwardContext ctx;
    ctx.training = true;
    ctx.router_noise = &noise;
    Tensor loss = ops::sum(ops::mul(moe.forward(x, ctx), dy));
    for (const Tensor& aux : ctx.aux_losses) loss = ops::add(loss, aux);
    loss.backward();
    load = ctx.moe_stats.at(0).tokens_per_expert;
  };
  auto dense_step = [&] {
    x.zero_grad();
    dense.zero_grad();
    ops::sum(ops::mul(dense.forward(x), dy)).backward();
  };
  const auto [dense_time, moe_time] = time_alternating(dense_step, moe_step, options.repeats);

  // Forward 3 GEMMs, backward 6, each 2·rows·d·width FLOPs: N rows at width K·512 (dense) or
  // N·K rows at width 512 spread over the experts (MoE); the router's N·d·E GEMMs are extra.
  const double flops = 9.0 * 2.0 * static_cast<double>(N) * d * (K * width);
  std::printf("%-34s %10s %10s %10s\n", "", "best ms", "median ms", "GFLOP/s");
  std::printf("%-34s %10.2f %10.2f %10.1f\n", "dense SwiGLU, width 1024, fwd+bwd",
              dense_time.best_s * 1e3, dense_time.median_s * 1e3, flops / dense_time.best_s * 1e-9);
  std::printf("%-34s %10.2f %10.2f %10.1f\n", "MoE 8 experts top-2, fwd+bwd", moe_time.best_s * 1e3,
              moe_time.median_s * 1e3, flops / moe_time.best_s * 1e-9);
  std::printf("MoE / dense time (best): %.2fx (target <= 1.5x; %lld tokens, d %lld, f32)\n",
              moe_time.best_s / dense_time.best_s, static_cast<long long>(N),
              static_cast<long long>(d));
  int64_t max_load = 0;
  for (int64_t l : load) max_load = std::max(max_load, l);
  std::printf("expert load max/mean: %.2f\n",
              static_cast<double>(max_load) * E / static_cast<double>(N * K));

  profiler::reset();
  profiler::set_enabled(true);
  const auto t0 = std::chrono::steady_clock::now();
  moe_step();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profiler::set_enabled(false);
  const double gemm = profiler::seconds(profiler::Category::kGemm);
  const double routing = profiler::seconds(profiler::Category::kMoe);
  std::printf("one MoE step: %.2f ms = GEMMs %.2f + routing/permutation %.2f + other %.2f\n",
              total * 1e3, gemm * 1e3, routing * 1e3, (total - gemm - routing) * 1e3);
  profiler::reset();
}

}  // namespace latte::cli
