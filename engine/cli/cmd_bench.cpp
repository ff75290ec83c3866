// `latte bench [NAME...]`: runs the named benchmarks (all when none is given).
#include <algorithm>
#include <cmath>
#include <iostream>

#include "engine/cli/bench.h"
#include "engine/cli/commands.h"
#include "engine/device.h"
#include "engine/error.h"

namespace latte::cli {

void bench_attention(const BenchOptions& options);
void bench_linear(const BenchOptions& options);
void bench_memory(const BenchOptions& options);
void bench_moe(const BenchOptions& options);
void bench_train(const BenchOptions& options);

const std::vector<Benchmark>& benchmarks() {
  static const std::vector<Benchmark> all = {
      {"linear", "linear forward+backward (4096 x 512 x 2048, f32) vs raw cblas_sgemm",
       bench_linear},
      {"moe",
       "MoE layer (cpu: fwd+bwd, 2048 tokens, 8 experts top-2, f32, vs equal-FLOP dense SwiGLU; "
       "cuda: fwd and fwd+bwd, 16384 tokens, 64 experts top-6, bf16, vs a loop of per-expert "
       "GEMMs)",
       bench_moe},
      {"attention",
       "causal attention core fwd / fwd+bwd, naive vs flash, time and peak memory (cpu: B 1, "
       "H 8, qk = v = 64, f32; cuda: B 4, H 16, T up to 8192, three head dims, bf16, TFLOP/s)",
       bench_attention},
      {"memory",
       "memory-bound ops (add, fill, casts, SwiGLU, RMSNorm, RoPE, embedding; fwd and fwd+bwd) "
       "in GB/s against a same-dtype copy (cpu: 4096 x 512 f32; cuda: 16384 x 1024 bf16)",
       bench_memory},
      {"train",
       "whole training steps of the MHA baseline and deepseek_v3_small (cpu: cpu scale; cuda: "
       "seed and gpu scales, bf16): tokens/s, model TFLOP/s, MFU",
       bench_train},
  };
  return all;
}

Timing time_it(const std::function<void()>& fn, int repeats) {
  fn();
  std::vector<double> times;
  for (int i = 0; i < std::max(repeats, 1); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

Timing time_on_device(const std::function<void()>& fn, int repeats, Device device) {
  // Seconds per call of `calls` back-to-back calls between two waits for the device.
  auto batch = [&](int calls) {
    synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) fn();
    synchronize(device);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
  };
  batch(1);
  const double once = batch(1);
  const int calls =
      static_cast<int>(std::clamp(std::ceil(kDeviceBatchSeconds / std::max(once, 1e-9)), 1.0,
                                  static_cast<double>(kMaxDeviceBatchCalls)));
  std::vector<double> times;
  for (int i = 0; i < std::max(repeats, 1); ++i) times.push_back(batch(calls));
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

Device bench_device(const std::string& bench, const BenchOptions& options) {
  LATTE_CHECK(options.device == "cpu" || options.device == "cuda")
      << "bench " << bench << ": --device expects cpu or cuda, got '" << options.device << "'";
  if (options.device == "cpu") return Device::CPU;
  require_cuda("bench " + bench + " --device cuda");
  return Device::CUDA;
}

void add_bench_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("bench", "Run benchmarks (throughput against a same-run baseline)");
  auto names = std::make_shared<std::vector<std::string>>();
  auto options = std::make_shared<BenchOptions>();
  std::string list;
  for (const auto& b : benchmarks()) list += (list.empty() ? "" : ", ") + b.name;
  cmd->add_option("names", *names, "Benchmarks to run: " + list + " (default: all)");
  cmd->add_option("--device", options->device, "cpu or cuda")->capture_default_str();
  cmd->add_option("--repeats", options->repeats, "Timed repetitions")->capture_default_str();
  cmd->add_flag("--quick", options->quick, "Smaller sizes (smoke runs)");
  cmd->add_flag("--profile", options->profile,
                "train only: print each run's step time split (slows the steps)");
  cmd->add_flag("--profile-host", options->profile_host,
                "train only: --profile on the host clock (on CUDA: where the host's time goes)");
  cmd->add_option("--peak-tflops", options->peak_tflops, "GPU bf16 dense peak for MFU (train)")
      ->capture_default_str();
  cmd->callback([names, options]() {
    for (const auto& n : *names) {
      const bool known = std::any_of(benchmarks().begin(), benchmarks().end(),
                                     [&](const Benchmark& b) { return b.name == n; });
      LATTE_CHECK(known) << "bench: unknown benchmark '" << n << "' (known: " << [] {
        std::string s;
        for (const auto& b : benchmarks()) s += (s.empty() ? "" : ", ") + b.name;
        return s;
      }() << ")";
    }
    LATTE_CHECK(!(options->profile || options->profile_host) ||
                (!names->empty() && std::all_of(names->begin(), names->end(),
                                                [](const std::string& n) { return n == "train"; })))
        << "bench: --profile and --profile-host apply to the train benchmark only (latte bench "
           "train --profile)";
    for (const auto& b : benchmarks()) {
      if (!names->empty() && std::find(names->begin(), names->end(), b.name) == names->end())
        continue;
      std::cout << "== " << b.name << ": " << b.description << "\n";
      b.run(*options);
    }
  });
}

}  // namespace latte::cli
