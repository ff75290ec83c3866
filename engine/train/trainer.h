// The training loop of one run: AdamW with warmup + cosine decay, gradient accumulation and
// clipping, the MoE bias update after each optimizer step, periodic evaluation on fixed
// validation windows, checkpoints, JSON-lines metrics and a live progress line. At the end it
// measures validation perplexity at each eval.length_multipliers × seq_len.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/dist/communicator.h"
#include "engine/train/run_config.h"

namespace latte {

struct TrainSummary {
  std::string status;  // "completed" | "interrupted"
  int64_t steps = 0;
  double final_train_loss = 0;  // mean lm loss of the last log interval
  double best_val_loss = 0;
  std::map<int64_t, double> val_loss_at_multiplier;  // multiplier -> final val loss
  double tokens_per_second = 0;
  double wall_seconds = 0;
  int64_t peak_bytes = 0;  // allocator peak over the run
  int64_t params_total = 0;
  nlohmann::json to_json() const;
};

struct TrainOptions {
  bool resume = false;        // continue from the newest checkpoint of the run folder
  bool progress = true;       // live progress line (plain lines when stdout is not a terminal)
  bool profile = false;       // print the step time split at the end (steps after the first)
  bool profile_host = false;  // profile on the host clock (on CUDA: the host, not the GPU)
  int64_t stop_after = 0;     // >0: stop (as if interrupted) after this many steps of this session
};

// Trains `config` in config.output.dir. Throws latte::Error on bad data or a non-finite loss
// (the last good checkpoint stays). Only rank 0 writes files.
TrainSummary train(const RunConfig& config, const TrainOptions& options, Communicator& comm);

// Installs SIGINT/SIGTERM handlers that ask running trainings to checkpoint and stop.
void install_stop_handlers();
bool stop_requested();

}  // namespace latte
