// Named tensors to and from safetensors files: the checkpoint and parity-interface format.
// Saving converts to contiguous CPU data; loading copies into existing tensors (converting the
// stored dtype) after checking that names and shapes match, and reports every problem at once.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace latte {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {});

// Every tensor of the file as a CPU tensor of its stored dtype, in file order.
NamedTensors load_tensors(const std::string& path);

// Copies the file's tensors into `destinations` (by name). Throws one latte::Error naming the
// file and listing every missing, unexpected and misshapen tensor. Names in `optional` may be
// absent from the file (the destination keeps its value).
void load_into(const std::string& path, const NamedTensors& destinations,
               const std::set<std::string>& optional = {});

}  // namespace latte
