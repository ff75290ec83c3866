// Benchmark: one DeepSeekMoE layer (models/moe.h) against the same expert work done without
// routing, on the device --device names.
// cpu: forward+backward at 2048 tokens, d 512, 8 routed experts top-2 of width 512, no shared
// expert, f32, the seed's softmax router with router noise and the Switch loss, against the same
// FLOPs done as one dense SwiGLU MLP of the equal active width 2·512 over the same tokens. Both
// losses are Σ y ⊙ dy (+ the balance loss for the MoE). The two run alternately. Prints both
// times, the ratio (target: MoE within 1.5x of dense), the expert load balance and where the MoE
// pass spends its time (profiler categories).
// cuda: a DeepSeek-like layer (16384 tokens, d 2048, 64 routed experts top-6 of width 1408 in 8
// groups, top-4 groups, noaux_tc with sigmoid scores, dropless, no shared expert; --quick: a
// small one) built on the CPU and moved with Module::to: fp32 master weights, bf16 activations,
// fp32 router. Forward and forward+backward (run_backward with a seed dy) against the expert MLP
// loop: per expert, ops::linear gate and up, the SwiGLU and ops::linear down (cuBLAS GEMMs) over
// its own equal block of N·K/E rows with the same bf16 weights. The layer reads its fp32 weights'
// kept bf16 compute copies (Tensor::to; in training AdamW writes them with each update), so layer
// minus loop is what routing, permutation and un-permutation add, reported as a share of the GEMM
// loop (target: at most 25%). Then the layer's forward step by step. Prints a table and
// "BENCH name=moe_... ms=" lines for tools/gpu_check.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/cli/bench.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/ops/moe_ops.h"
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

void bench_moe_cpu(const BenchOptions& options) {
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
  profiler::start(profiler::host_timer());
  const auto t0 = std::chrono::steady_clock::now();
  moe_step();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profiler::stop();
  const double gemm = profiler::seconds(profiler::Category::kGemm);
  const double routing = profiler::seconds(profiler::Category::kMoe);
  std::printf("one MoE step: %.2f ms = GEMMs %.2f + routing/permutation %.2f + other %.2f\n",
              total * 1e3, gemm * 1e3, routing * 1e3, (total - gemm - routing) * 1e3);
  profiler::reset();
}

// Sizes of the CUDA benchmark's layer. The GEMM loop's blocks need tokens · top_k to be a
// multiple of experts.
struct CudaMoeShape {
  int64_t batch, seq, hidden, experts, top_k, width, groups, top_groups;
};

void bench_moe_cuda(const BenchOptions& options) {
  const CudaMoeShape s = options.quick ? CudaMoeShape{1, 2048, 512, 16, 4, 256, 4, 2}
                                       : CudaMoeShape{4, 4096, 2048, 64, 6, 1408, 8, 4};
  const int64_t N = s.batch * s.seq, E = s.experts, K = s.top_k, d = s.hidden, width = s.width;
  const int64_t block_rows = N * K / E;
  MoeConfig config;
  config.n_routed_experts = E;
  config.num_experts_per_tok = K;
  config.n_shared_experts = 0;
  config.moe_intermediate_size = width;
  config.scoring_func = ScoringFunc::kSigmoid;
  config.topk_method = TopkMethod::kNoauxTc;
  config.n_group = s.groups;
  config.topk_group = s.top_groups;
  config.norm_topk_prob = true;
  config.routed_scaling_factor = 2.5;
  config.capacity_factor = 0.0;

  Allocator& allocator = allocator_for(Device::CUDA);
  allocator.release_cached();
  Generator gen(1);
  MoeLayer moe(d, config, "mlp", InitContext{&gen, 0.02, DType::F32});
  moe.to(Device::CUDA);
  Tensor x = randn({s.batch, s.seq, d}, gen, 0.0, 1.0, DType::BF16, Device::CUDA);
  x.set_requires_grad(true);
  const Tensor dy = randn({s.batch, s.seq, d}, gen, 0.0, 1.0, DType::BF16, Device::CUDA);

  // The layer's own parameters (fp32, on the GPU), for the loop and the step-by-step forward:
  // expert e's gate, up and down weights at index e.
  std::map<std::string, Tensor> params;
  for (const auto& [name, t] : moe.named_parameters()) params[name] = t;
  std::vector<Tensor> gate_w, up_w, down_w;
  for (int64_t e = 0; e < E; ++e) {
    const std::string prefix = "experts." + std::to_string(e) + ".";
    gate_w.push_back(params.at(prefix + "gate_proj.weight"));
    up_w.push_back(params.at(prefix + "up_proj.weight"));
    down_w.push_back(params.at(prefix + "down_proj.weight"));
  }
  // bf16 copies of them: trainable leaves of the GEMM loop.
  std::vector<Tensor> gate_bf16, up_bf16, down_bf16;
  for (int64_t e = 0; e < E; ++e) {
    gate_bf16.push_back(gate_w[e].detach().to(DType::BF16).set_requires_grad(true));
    up_bf16.push_back(up_w[e].detach().to(DType::BF16).set_requires_grad(true));
    down_bf16.push_back(down_w[e].detach().to(DType::BF16).set_requires_grad(true));
  }
  std::vector<Tensor> x_blocks, dy_blocks;
  for (int64_t e = 0; e < E; ++e) {
    x_blocks.push_back(randn({block_rows, d}, gen, 0.0, 1.0, DType::BF16, Device::CUDA));
    x_blocks.back().set_requires_grad(true);
    dy_blocks.push_back(randn({block_rows, d}, gen, 0.0, 1.0, DType::BF16, Device::CUDA));
  }

  std::vector<int64_t> load;
  auto layer = [&](bool backward) {
    x.zero_grad();
    moe.zero_grad();
    ForwardContext ctx;
    ctx.training = true;
    if (!backward) {
      NoGradGuard no_grad;
      moe.forward(x, ctx);
    } else {
      run_backward(moe.forward(x, ctx), dy);
    }
    load = ctx.moe_stats.at(0).tokens_per_expert;
  };
  auto loop = [&](bool backward) {
    moe.zero_grad();
    std::optional<NoGradGuard> no_grad;
    if (!backward) no_grad.emplace();
    for (int64_t e = 0; e < E; ++e) {
      for (Tensor* t : {&x_blocks[e], &gate_bf16[e], &up_bf16[e], &down_bf16[e]}) t->zero_grad();
      const Tensor& xb = x_blocks[e];
      const Tensor out = ops::linear(
          ops::swiglu(ops::linear(xb, gate_bf16[e]), ops::linear(xb, up_bf16[e])), down_bf16[e]);
      if (backward) run_backward(out, dy_blocks[e]);
    }
  };
  auto timed = [&](const std::function<void()>& fn) {
    return time_on_device(fn, options.repeats, Device::CUDA);
  };
  // [pass]: fwd, fwd+bwd
  const Timing layer_time[2] = {timed([&] { layer(false); }), timed([&] { layer(true); })};
  const Timing loop_time[2] = {timed([&] { loop(false); }), timed([&] { loop(true); })};
  x.zero_grad();
  moe.zero_grad();
  for (int64_t e = 0; e < E; ++e)
    for (Tensor* t : {&x_blocks[e], &gate_bf16[e], &up_bf16[e], &down_bf16[e]}) t->zero_grad();

  // The layer's forward step by step (models/moe.cpp), each step timed on the previous steps'
  // outputs.
  NoGradGuard no_grad;
  const Tensor xf = x.reshape({N, d});
  ops::RouterSpec spec;
  spec.n_experts = E;
  spec.top_k = K;
  spec.method = ops::RouterTopkMethod::kNoauxTc;
  spec.n_group = config.n_group;
  spec.topk_group = config.topk_group;
  spec.norm_topk_prob = config.norm_topk_prob;
  spec.routed_scaling_factor = config.routed_scaling_factor;
  const Tensor gate_weight = params.at("gate.weight");
  ops::RouterChoice choice;
  auto route = [&] {
    const Tensor logits = ops::linear(xf.to(gate_weight.dtype()), gate_weight);
    choice = ops::moe_select_experts(ops::moe_router_scores(logits, ops::RouterScoring::kSigmoid),
                                     moe.correction_bias(), spec);
  };
  ops::MoeDispatchPlan plan;
  auto dispatch = [&] { plan = ops::moe_dispatch(choice.expert_ids, E, config.capacity_factor); };
  Tensor x_sorted;
  auto gather = [&] { x_sorted = ops::moe_gather(xf, plan); };
  ops::MoeExpertWeights weights;
  auto weight_lookup = [&] {
    weights = {};
    for (int64_t e = 0; e < E; ++e) {
      weights.gate_proj.push_back(gate_w[e].to(DType::BF16));
      weights.up_proj.push_back(up_w[e].to(DType::BF16));
      weights.down_proj.push_back(down_w[e].to(DType::BF16));
    }
  };
  Tensor routed;
  auto experts = [&] { routed = ops::moe_expert_mlps(x_sorted, plan, weights); };
  auto combine = [&] { ops::moe_combine(routed, choice.weights, plan); };
  struct Step {
    const char* label;
    const char* bench_name;
    std::function<void()> run;
    Timing time;
  };
  std::vector<Step> steps = {
      {"routing (router GEMM, sigmoid, noaux_tc top-k)", "moe_routing", route, {}},
      {"dispatch (counting sort, counts to the host)", "moe_dispatch", dispatch, {}},
      {"gather (permutation)", "moe_gather", gather, {}},
      {"expert weights (kept bf16 copies)", "moe_weights", weight_lookup, {}},
      {"expert MLPs (grouped GEMMs + SwiGLU)", "moe_expert_mlps", experts, {}},
      {"combine (un-permutation)", "moe_combine", combine, {}},
  };
  for (Step& step : steps) step.time = timed(step.run);

  // Expert GEMM FLOPs: gate, up and down over N·K rows, 2·d·width each; the backward does twice
  // the forward's. The router's 2·N·d·E is not counted.
  const double gemm_flops = 3.0 * 2.0 * static_cast<double>(N * K) * d * width;
  std::printf(
      "MoE layer: %lld tokens, d %lld, %lld routed experts top-%lld of width %lld (noaux_tc, "
      "sigmoid, %lld groups top-%lld), dropless, no shared expert; fp32 master weights, bf16 "
      "activations, fp32 router; cuda\n",
      static_cast<long long>(N), static_cast<long long>(d), static_cast<long long>(E),
      static_cast<long long>(K), static_cast<long long>(width), static_cast<long long>(s.groups),
      static_cast<long long>(s.top_groups));
  std::printf(
      "GEMM loop: per expert, ops::linear gate and up, SwiGLU, ops::linear down over its own "
      "block of %lld rows (N·K/E) with the bf16 weights the layer reads (its fp32 weights' kept "
      "compute copies)\n",
      static_cast<long long>(block_rows));
  std::printf(
      "time: each of %d timings is the mean of back-to-back calls filling >= %.0f ms between two "
      "waits for the GPU; TFLOP/s = expert GEMM FLOPs (fwd %.3g, fwd+bwd 3x) / best time\n\n",
      std::max(options.repeats, 1), kDeviceBatchSeconds * 1e3, gemm_flops);
  const char* pass_names[2] = {"fwd", "fwd+bwd"};
  const char* pass_keys[2] = {"fwd", "fwd_bwd"};
  const double pass_flops[2] = {gemm_flops, 3 * gemm_flops};
  struct Row {
    const char* label;
    const char* bench_name;
    const Timing* time;  // [pass]
  };
  const Row rows[] = {{"MoE layer", "moe_layer", layer_time}, {"GEMM loop", "moe_loop", loop_time}};
  std::printf("%-24s %-8s %10s %10s %9s\n", "", "pass", "best ms", "median ms", "TFLOP/s");
  for (int pi = 0; pi < 2; ++pi) {
    for (const Row& row : rows) {
      const Timing& t = row.time[pi];
      const double tflops = pass_flops[pi] / t.best_s * 1e-12;
      std::printf("%-24s %-8s %10.3f %10.3f %9.1f\n", row.label, pass_names[pi], t.best_s * 1e3,
                  t.median_s * 1e3, tflops);
      std::printf("BENCH name=%s_%s ms=%.4f tflops=%.2f median_ms=%.4f\n", row.bench_name,
                  pass_keys[pi], t.best_s * 1e3, tflops, t.median_s * 1e3);
    }
  }
  std::printf(
      "\nrouting + permutation + un-permutation = MoE layer - GEMM loop (best times), as a share "
      "of the GEMM loop (target <= 25%%):\n");
  for (int pi = 0; pi < 2; ++pi) {
    const double added = layer_time[pi].best_s - loop_time[pi].best_s;
    const double pct = 100.0 * added / loop_time[pi].best_s;
    std::printf("  %-8s %8.3f ms = %5.1f%% of %.3f ms\n", pass_names[pi], added * 1e3, pct,
                loop_time[pi].best_s * 1e3);
    std::printf("BENCH name=moe_overhead_%s ms=%.4f pct=%.2f\n", pass_keys[pi], added * 1e3, pct);
  }
  int64_t max_load = 0;
  for (int64_t l : load) max_load = std::max(max_load, l);
  std::printf("expert load max/mean: %.2f (the loops' blocks are equal)\n\n",
              static_cast<double>(max_load) * E / static_cast<double>(N * K));

  std::printf("%-48s %10s %10s\n", "MoE layer forward, step by step", "best ms", "median ms");
  double sum = 0;
  for (const Step& step : steps) {
    sum += step.time.best_s;
    std::printf("%-48s %10.3f %10.3f\n", step.label, step.time.best_s * 1e3,
                step.time.median_s * 1e3);
    std::printf("BENCH name=%s ms=%.4f median_ms=%.4f\n", step.bench_name, step.time.best_s * 1e3,
                step.time.median_s * 1e3);
  }
  const double routing_steps =
      steps[0].time.best_s + steps[1].time.best_s + steps[2].time.best_s + steps[5].time.best_s;
  std::printf("%-48s %10.3f (the layer's fwd: %.3f)\n", "sum of the steps", sum * 1e3,
              layer_time[0].best_s * 1e3);
  std::printf("routing + dispatch + gather + combine = %.1f%% of the expert MLPs step\n",
              100.0 * routing_steps / steps[4].time.best_s);
  std::fflush(stdout);
}

}  // namespace

void bench_moe(const BenchOptions& options) {
  if (bench_device("moe", options) == Device::CUDA)
    bench_moe_cuda(options);
  else
    bench_moe_cpu(options);
}

}  // namespace latte::cli
