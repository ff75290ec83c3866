// `latte stats CONFIG [--json] [--seq-len N] [--set k=v]...`: parameter counts, forward FLOPs
// per token and KV-cache bytes per token of a model config (models/model_stats.h), computed
// from the config alone. --seq-len defaults to max_position_embeddings capped at 4096.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/cli/commands.h"
#include "engine/config/toml_document.h"
#include "engine/error.h"
#include "models/config_loader.h"
#include "models/model_stats.h"

namespace latte::cli {

namespace {

// The sequence length used when --seq-len is not given: the model's context, but at most this.
constexpr int64_t kDefaultSeqLenCap = 4096;

struct StatsArgs {
  std::string config;
  std::vector<std::string> overrides;
  int64_t seq_len = 0;
  bool seq_len_given = false;
  bool json = false;
};

std::string printf_string(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

// 671026404352 -> "671,026,404,352".
std::string with_separators(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  for (int64_t i = static_cast<int64_t>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return (value < 0 ? "-" : "") + digits;
}

// 671026404352 -> "671.0 B (671,026,404,352)"; counts under a thousand stay plain.
std::string count_text(int64_t value) {
  const double v = static_cast<double>(value);
  std::string scaled;
  if (v >= 1e9) {
    scaled = printf_string("%.1f B", v / 1e9);
  } else if (v >= 1e6) {
    scaled = printf_string("%.1f M", v / 1e6);
  } else if (v >= 1e3) {
    scaled = printf_string("%.1f K", v / 1e3);
  } else {
    return std::to_string(value);
  }
  return scaled + " (" + with_separators(value) + ")";
}

void print_table(const std::string& source, const ModelConfig& config, const ModelStats& stats) {
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) moe_layers += config.is_moe_layer(l);
  const bool mla = config.attention.type == AttentionType::kMla;
  std::cout << source << ": " << (mla ? "MLA" : "MHA") << ", " << config.num_hidden_layers
            << " layers (" << moe_layers << " MoE), " << config.mtp.num_layers << " MTP module"
            << (config.mtp.num_layers == 1 ? "" : "s") << "\n";

  const auto row = [](const std::string& name, const std::string& value) {
    std::cout << "  " << name << std::string(name.size() < 30 ? 30 - name.size() : 1, ' ') << value
              << "\n";
  };
  row("parameters, total", count_text(stats.params_total) + ", MTP excluded");
  row("parameters, active / token", count_text(stats.params_active));
  row("parameters, MTP modules", count_text(stats.params_mtp));
  row("attention parameters / layer", count_text(stats.attention_params_per_layer));
  row("forward FLOPs / token", printf_string("%.4g GFLOP", stats.flops_per_token / 1e9) +
                                   " at seq_len " + std::to_string(stats.seq_len));
  if (config.mtp.num_layers > 0)
    row("  MTP modules, forward", printf_string("%.4g GFLOP", stats.mtp_flops_per_token / 1e9));
  const int64_t per_head = per_head_kv_cache_bytes_per_token(config);
  row("KV cache / token (bf16)", with_separators(stats.kv_cache_bytes_per_token) + " bytes");
  row("  per-head K and V would be",
      with_separators(per_head) + " bytes (" +
          printf_string("%.1fx", static_cast<double>(per_head) /
                                     static_cast<double>(stats.kv_cache_bytes_per_token)) +
          " larger)");
}

void run_stats(const StatsArgs& args) {
  ConfigDocument doc = ConfigDocument::load(args.config);
  doc.apply_overrides(args.overrides);
  const ModelConfig config = load_model_config(doc);
  const int64_t seq_len = args.seq_len_given
                              ? args.seq_len
                              : std::min(config.max_position_embeddings, kDefaultSeqLenCap);
  LATTE_CHECK(seq_len >= 1) << "stats: --seq-len must be >= 1, got " << seq_len;
  const ModelStats stats = compute_model_stats(config, seq_len);
  if (args.json) {
    std::cout << model_stats_to_json(stats).dump(2) << "\n";
  } else {
    print_table(args.config, config, stats);
  }
}

}  // namespace

void add_stats_command(CLI::App& app) {
  auto args = std::make_shared<StatsArgs>();
  auto* cmd = app.add_subcommand(
      "stats", "Parameter counts, FLOPs per token and KV-cache bytes of a model config");
  cmd->add_option("config", args->config, "Model config (TOML)")->required();
  cmd->add_flag("--json", args->json, "Print the numbers as one JSON object");
  cmd->add_option("--seq-len", args->seq_len,
                  "Sequence length for the attention FLOPs (default: max_position_embeddings, "
                  "at most " +
                      std::to_string(kDefaultSeqLenCap) + ")");
  cmd->add_option("--set", args->overrides, "Override a config key: section.key=value");
  cmd->callback([args, cmd] {
    args->seq_len_given = cmd->count("--seq-len") > 0;
    run_stats(*args);
  });
}

}  // namespace latte::cli
