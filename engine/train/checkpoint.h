// Checkpoints of a run: RUN/checkpoints/step_NNNNNNNN/ holds model.safetensors (parameters and
// buffers by SPEC name), optimizer.safetensors (AdamW moments) and state.json (step, data
// position, RNG state, config). A checkpoint is written into a temporary folder, each file
// atomically and fsynced, and then renamed into place, so a crash never leaves a half-written
// checkpoint under a final name; older ones beyond `keep` are removed only after that.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/module.h"
#include "engine/optim/adamw.h"

namespace latte {

// Writes the checkpoint of `step` and prunes to the newest `keep`. Returns its folder.
std::string save_checkpoint(const std::string& run_dir, int64_t step, const Module& model,
                            const AdamW& optimizer, const nlohmann::json& state, int64_t keep);

// The newest complete checkpoint folder of a run, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);

// Restores parameters, buffers and optimizer moments from `folder`; returns state.json.
// Errors name the folder and every missing or misshapen tensor.
nlohmann::json load_checkpoint(const std::string& folder, const Module& model, AdamW& optimizer);

}  // namespace latte
