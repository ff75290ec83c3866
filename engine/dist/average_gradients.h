// Averages the gradients of a model's parameters across the ranks of a data-parallel job, so
// every rank applies the same optimizer step: the step a single process would take on the
// global batch.
#pragma once

#include <vector>

#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace latte {

// A parameter whose gradient is undefined on some ranks (their batch did not reach it) gets a
// zero gradient there, so every rank reduces the same tensors and the mean counts it as 0; one
// that no rank reached stays undefined, as it would in one process. One reduction for the
// flags, one allreduce_mean for the gradients; nothing at all with one rank.
void average_gradients(const std::vector<Tensor>& params, Communicator& comm);

}  // namespace latte
