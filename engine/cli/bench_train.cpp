// Benchmark: whole training steps through the real trainer — the experiment suite
// (configs/exp3/suite.toml) with a short budget, for the MHA baseline and deepseek_v3_small.
// On the CPU at the cpu scale (--quick: smoke); on CUDA at the seed and gpu scales in the default
// bf16 mixed precision. Prints tokens/s per model and, from the models' FLOPs per token
// (models/model_stats.h: forward matmuls and attention of the main model and of the MTP modules
// the step also trains, ×3 for forward+backward), the achieved model TFLOP/s and, on CUDA, the MFU
// against --peak-tflops. With --profile every run also prints where its step time goes
// (engine/profiler.h).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/cli/bench.h"
#include "engine/error.h"
#include "engine/train/suite.h"

namespace latte::cli {

void bench_train(const BenchOptions& options) {
  LATTE_CHECK(options.device == "cpu" || options.device == "cuda")
      << "bench train: --device expects cpu or cuda, got '" << options.device << "'";
  const bool cuda = options.device == "cuda";
  const std::vector<std::string> scales =
      cuda ? std::vector<std::string>{"seed", "gpu"}
           : std::vector<std::string>{options.quick ? "smoke" : "cpu"};
  const int steps = options.quick ? 8 : 30;
  // The source tree: $LATTE_SOURCE_DIR when set (binaries run away from where they were built).
  const char* env_source = std::getenv("LATTE_SOURCE_DIR");
  const std::string source = env_source && *env_source ? env_source : LATTE_SOURCE_DIR;
  const std::string suite_file = source + "/configs/exp3/suite.toml";
  const std::filesystem::path scratch =
      std::filesystem::temp_directory_path() / ("latte_bench_train_" + std::to_string(::getpid()));
  const auto comm = make_single_process_communicator();

  std::printf(
      "trainer steps: %d per model (the first is not timed), eval and checkpoints off, "
      "device %s%s\n",
      steps, options.device.c_str(), cuda ? ", bf16 mixed precision" : ", f32");
  std::printf(
      "FLOPs per token = 3 x forward (matmuls + attention scores and values, of the main model "
      "and its MTP modules)%s\n",
      cuda ? "; MFU = model FLOP/s / peak" : "");
  if (options.profile || options.profile_host)
    std::printf(
        "--profile%s: each run prints its step time split; the profiled steps end with a "
        "device sync and time every op, so tokens/s are lower than without it\n",
        options.profile_host ? "-host" : "");
  std::vector<std::string> rows;
  for (const std::string& scale : scales) {
    SuiteOptions so;
    so.scale = scale;
    so.only = {"baseline_mha", "deepseek_v3_small"};
    so.overrides = {"train.steps=" + std::to_string(steps),
                    "train.warmup_steps=1",
                    "train.checkpoint_every=0",
                    "eval.every=0",
                    "eval.windows=1",
                    "eval.length_multipliers=[1]",
                    "train.device=\"" + options.device + "\""};
    so.output_dir = (scratch / scale).string();
    so.progress = false;
    so.plots = false;
    so.profile = options.profile;
    so.profile_host = options.profile_host;
    const SuiteResult result = run_suite(suite_file, so, *comm);
    for (const auto& run : result.results.at("runs")) {
      const double tps = run.at("summary").at("tokens_per_second").get<double>();
      const nlohmann::json& stats = run.at("stats");
      const double flops = 3.0 * (stats.at("flops_per_token").get<double>() +
                                  stats.at("mtp_flops_per_token").get<double>());
      const double tflops = tps * flops / 1e12;
      const std::string name = run.at("variant").get<std::string>();
      const double mfu = cuda ? tflops / options.peak_tflops : 0.0;
      char mfu_text[32] = "-", row[256];
      if (cuda) std::snprintf(mfu_text, sizeof mfu_text, "%.1f%%", 100.0 * mfu);
      std::snprintf(row, sizeof row, "%-6s %-20s %12.0f %14.3g %10.3f %8s", scale.c_str(),
                    name.c_str(), tps, flops, tflops, mfu_text);
      rows.push_back(row);
      std::printf("BENCH name=train scale=%s model=%s tokens_per_s=%.0f tflops=%.3f mfu=%.4f\n",
                  scale.c_str(), name.c_str(), tps, tflops, mfu);
    }
  }
  std::printf("\n%-6s %-20s %12s %14s %10s %8s\n", "scale", "model", "tokens/s", "FLOPs/token",
              "TFLOP/s", "MFU");
  for (const std::string& row : rows) std::printf("%s\n", row.c_str());
  std::error_code ignored;
  std::filesystem::remove_all(scratch, ignored);
}

}  // namespace latte::cli
