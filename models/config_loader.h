// Reading the [model], [model.attention], [model.rope], [model.moe] and [model.mtp] tables of
// SPEC §7 into ModelConfig, with every constraint checked (errors name file:line and the dotted
// key); the way back to JSON and TOML; and the TOML names of the config enums.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

#include "engine/config/toml_document.h"
#include "models/config.h"

namespace latte {

// The model of `doc`, SPEC §7 defaults for absent keys. [model] must exist (it may be empty); an
// absent [model.moe] gives an all-dense model. Unknown keys and keys of the other attention type
// are errors; [model.rope] and [model.moe] keys unused by the chosen rope type or router are
// read (type-checked) and ignored.
ModelConfig load_model_config(const ConfigDocument& doc);

// {"model": {..., "attention": {...}, "rope": {...}, "moe": {...}, "mtp": {...}}}: every key
// load_model_config reads (the attention keys of the configured type only; "moe" only for an
// MoE model), in the shape of the TOML tables, so that
// load_model_config(ConfigDocument::from_json(model_config_to_json(c), ...)) gives back c.
nlohmann::json model_config_to_json(const ModelConfig& config);
// The same as TOML text, keys in SPEC §7 order.
std::string model_config_to_toml(const ModelConfig& config);

// The TOML spelling of each enum value ("mla", "flash", "yarn", "sigmoid", "noaux_tc").
std::string_view to_string(AttentionType type);
std::string_view to_string(AttentionImpl impl);
std::string_view to_string(RopeType type);
std::string_view to_string(ScoringFunc func);
std::string_view to_string(TopkMethod method);

}  // namespace latte
