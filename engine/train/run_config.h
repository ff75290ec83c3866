// A training run's configuration: the model (SPEC §7) plus the [train], [data], [eval] and
// [output] sections, read once from a resolved TOML document (inherit and --set applied) and
// validated with file:line:key errors. Every key is documented in configs/README.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/config/toml_document.h"
#include "models/config.h"

namespace latte {

struct TrainSection {
  uint64_t seed = 1;
  std::string device = "cpu";  // cpu | cuda
  // float32 | float64 (CPU) | bfloat16 (CUDA: mixed precision, fp32 master weights); the
  // default is bfloat16 on cuda, float32 on cpu.
  std::string dtype = "float32";
  int64_t batch_size = 8;  // sequences per optimizer micro-step (per rank)
  int64_t seq_len = 128;
  int64_t grad_accum = 1;  // micro-steps per optimizer step
  int64_t steps = 200;     // optimizer steps
  double lr = 3e-4;
  double min_lr = 3e-5;
  int64_t warmup_steps = 20;
  double weight_decay = 0.01;  // matrices only
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;  // global norm; 0 = off
  int64_t log_every = 10;
  int64_t checkpoint_every = 0;  // 0 = only at the end (and on interrupt)
  int64_t keep_checkpoints = 2;
  int64_t threads = 0;  // OpenMP threads; 0 = all cores
};

struct DataSection {
  // Paths or globs of .bin shards or .txt files; "fortunes" = the default corpus (Debian's
  // English fortunes, split 90/10 by fortune).
  std::vector<std::string> train = {"fortunes"};
  std::vector<std::string> val = {"fortunes"};
};

struct EvalSection {
  int64_t every = 50;    // steps between validation passes; 0 = only at the end
  int64_t windows = 16;  // fixed validation windows per pass
  std::vector<int64_t> length_multipliers = {1, 2, 4};  // final perplexity at these × seq_len
};

struct OutputSection {
  std::string dir = "runs/latte";
};

struct RunConfig {
  std::string name;  // the config file's stem unless [output] name overrides
  ModelConfig model;
  TrainSection train;
  DataSection data;
  EvalSection eval;
  OutputSection output;
  nlohmann::json resolved;  // the whole resolved document (saved with checkpoints)
};

RunConfig load_run_config(const ConfigDocument& doc);
// ConfigDocument::load + overrides + load_run_config.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);

}  // namespace latte
